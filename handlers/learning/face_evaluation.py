"""Measure face matching on a store's own photos: enroll one photo per person as enrollment does, search the rest.

Enrollment here is the product's: the largest searchable face of a photo is cropped by the backend, the crop is
looked at again and judged by the enrollment quality gates (handlers/learning/gates.py), and only then enrolled;
a refused photo is counted with its reason and the person's next photo is tried (in file-name order). Every
photo that was not enrolled is then searched as the pipeline searches a checkout face (largest face of at least
``recognition.min_face_px``) against every enrolled person, down to a floor below every threshold reported, so
one search gives the similarity of that photo to each person. A photo of an enrolled person gives one genuine
comparison (with its own person) and one impostor comparison with each other enrolled person; a photo of a
person who could not be enrolled gives impostor comparisons only.

The backend given must be a scratch one (an empty local gallery, a Rekognition collection made for the run):
this module enrolls into it freely and never erases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.config import EnrollmentConfig, RecognitionConfig
from handlers.learning import gates
from vision.image_prep import ImageRejected
from vision.types import DetectedFace, FaceBackend, RecognitionError

LOWEST_THRESHOLD = 50
HIGHEST_THRESHOLD = 99


@dataclass(frozen=True)
class Photo:
    person: str  # the folder it came from: who is on it
    name: str  # its file name, to find it again in the report
    content: bytes


@dataclass(frozen=True)
class Refusal:
    person: str
    photo: str
    stage: str  # enrollment | search
    code: str  # no_face|several_faces|too_small|blurred (the gates), unreadable, backend_refused
    problem: str  # plain words


@dataclass(frozen=True)
class Comparison:
    person: str  # who is on the searched photo
    photo: str
    against: str  # the enrolled person it was compared with
    similarity: float | None  # None: below the search floor (no match at any threshold reported)

    @property
    def genuine(self) -> bool:
        return self.person == self.against


@dataclass
class EvaluationRun:
    backend: str
    people: tuple[str, ...]
    photos: int
    floor: float  # the lowest similarity searched for
    enrolled: dict[str, str] = field(default_factory=dict)  # person -> the photo enrolled
    comparisons: list[Comparison] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    @property
    def refused_photos(self) -> int:
        return len({(r.person, r.photo) for r in self.refusals})


def search_floor(recognition: RecognitionConfig) -> float:
    """Low enough for every threshold reported, the configured ones included."""
    return min(LOWEST_THRESHOLD, recognition.match_threshold, recognition.review_threshold)


def evaluate(
    photos: Mapping[str, Sequence[Photo]],
    *,
    faces: FaceBackend,
    enrollment: EnrollmentConfig,
    recognition: RecognitionConfig,
    on_photo: Callable[[Photo], None] = lambda photo: None,
) -> EvaluationRun:
    """Enroll then search ``photos`` (person -> their photos) on ``faces``; ``on_photo`` is told of each photo
    looked at (a progress bar). Backend person ids are opaque (``E-1``…): a folder name never leaves this run."""
    people = tuple(sorted(photos))
    run = EvaluationRun(faces.name, people, sum(len(p) for p in photos.values()), floor=search_floor(recognition))
    backend_ids = {person: f"E-{n}" for n, person in enumerate(people, start=1)}
    detected: dict[tuple[str, str], list[DetectedFace] | Refusal] = {}

    def look(photo: Photo, stage: str) -> list[DetectedFace] | Refusal:
        # Each photo is looked at once per run (the local backend spends ~0.5 s a picture): an enrollment
        # candidate that is refused is searched later with the faces found now.
        key = (photo.person, photo.name)
        if key not in detected:
            on_photo(photo)
            detected[key] = _detect(faces, photo, stage)
        return detected[key]

    for person in people:
        for photo in sorted(photos[person], key=lambda p: p.name):
            outcome = _enroll(faces, photo, backend_ids[person], look(photo, "enrollment"), enrollment, recognition)
            if outcome is None:
                run.enrolled[person] = photo.name
                break
            run.refusals.append(outcome)
    enrolled_ids = [backend_ids[p] for p in people if p in run.enrolled]
    person_of = {backend_ids[p]: p for p in people}
    for person in people:
        for photo in sorted(photos[person], key=lambda p: p.name):
            if run.enrolled.get(person) == photo.name:
                continue
            found = look(photo, "search")
            face = _searchable(found, recognition) if not isinstance(found, Refusal) else None
            if face is None:
                refusal = found if isinstance(found, Refusal) else _too_small(found, photo, recognition)
                run.refusals.append(Refusal(person, photo.name, "search", refusal.code, refusal.problem))
                continue
            try:
                matches = faces.search(face, person_ids=enrolled_ids, min_similarity=run.floor) if enrolled_ids else []
            except RecognitionError as exc:
                if exc.retry:
                    raise
                run.refusals.append(Refusal(person, photo.name, "search", "backend_refused", exc.reason))
                continue
            best = {m.person_id: m.similarity for m in matches}
            run.comparisons.extend(
                Comparison(person, photo.name, person_of[backend_id], best.get(backend_id))
                for backend_id in enrolled_ids
            )
    return run


def _detect(faces: FaceBackend, photo: Photo, stage: str) -> list[DetectedFace] | Refusal:
    try:
        return faces.detect(photo.content)
    except ImageRejected as exc:
        return Refusal(photo.person, photo.name, stage, "unreadable", str(exc))
    except RecognitionError as exc:
        if exc.retry:
            raise  # busy or unreachable after the client's own retries: the run cannot say anything honest
        return Refusal(photo.person, photo.name, stage, "backend_refused", exc.reason)


def _searchable(found: list[DetectedFace], recognition: RecognitionConfig) -> DetectedFace | None:
    """The face the pipeline would search: large enough to judge; the largest, as the photo is of one person."""
    large = [f for f in found if f.size_px >= recognition.min_face_px]
    return max(large, key=lambda f: f.size_px) if large else None


def _too_small(found: list[DetectedFace], photo: Photo, recognition: RecognitionConfig) -> Refusal:
    if not found:
        return Refusal(photo.person, photo.name, "search", "no_face", "no face can be found in the photo")
    largest = max(f.size_px for f in found)
    return Refusal(
        photo.person,
        photo.name,
        "search",
        "too_small",
        f"too small to search: {largest} px, at least {recognition.min_face_px} px",
    )


def _enroll(
    faces: FaceBackend,
    photo: Photo,
    backend_id: str,
    found: list[DetectedFace] | Refusal,
    enrollment: EnrollmentConfig,
    recognition: RecognitionConfig,
) -> Refusal | None:
    """None when the photo is enrolled; else why not (the product's gates, or the backend's own refusal)."""
    if isinstance(found, Refusal):
        return Refusal(photo.person, photo.name, "enrollment", found.code, found.problem)
    face = _searchable(found, recognition)
    if face is None:
        refusal = _too_small(found, photo, recognition)
        return Refusal(photo.person, photo.name, "enrollment", refusal.code, refusal.problem)
    try:
        # As the product enrolls: the face's stored crop is looked at again and the gates judge what is found there.
        result = gates.check(faces.detect(face.crop), enrollment)
        if result.problem is not None or result.face is None:
            return Refusal(photo.person, photo.name, "enrollment", result.code or "quality", result.problem or "")
        faces.enroll(backend_id, result.face)
    except ImageRejected as exc:
        return Refusal(photo.person, photo.name, "enrollment", "unreadable", str(exc))
    except RecognitionError as exc:
        if exc.retry:
            raise
        return Refusal(photo.person, photo.name, "enrollment", "backend_refused", exc.reason)
    return None
