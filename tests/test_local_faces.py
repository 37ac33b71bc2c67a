"""The local backend on real photos (dlib itself, no mocks): detection, quality, watchlist search and the gallery.

Similarities observed when this was written (Grace Hopper enrolled from the "enroll" scene):
same person elsewhere 92.6–96.3 (60 px face, 240 px face, dim, bright, tilted and mirrored,
1.5 px blur); the astronaut against her 76.7–78.2 (dlib distances 0.65–0.70). The assertions keep a margin from those:
same person ≥ 85 and best by ≥ 10 points, different people < 80 (the review threshold).
Detections of the shared scenes are cached per module: dlib takes ~0.3–0.5 s per 1280×720 scene.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import threading
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from simulation.scenes import Placement, Product, Scene, compose_scene
from vision.local_faces import LocalFaceBackend, distance_for, similarity
from vision.types import Box, DetectedFace

REVIEW = 80.0  # RecognitionConfig.review_threshold's default: below it nothing is a match
GRACE, ASTRO = "p-grace", "p-astro"
COUNTER = (Product("cereal", (0.08, 0.76, 0.22, 0.96)), Product("tv", (0.62, 0.74, 0.9, 0.98)))

# Grace Hopper elsewhere: other places, scales, lighting and pose than where she was enrolled.
GRACE_VARIANTS = {
    "small_left": [Placement("grace_hopper", at=(0.18, 0.35), face_px=60)],
    "large_right": [Placement("grace_hopper", at=(0.72, 0.42), face_px=240)],
    "dim": [Placement("grace_hopper", at=(0.4, 0.4), face_px=120, brightness=0.55, contrast=0.8)],
    "bright": [Placement("grace_hopper", at=(0.62, 0.38), face_px=120, brightness=1.35, contrast=1.15)],
    "tilted_mirrored": [Placement("grace_hopper", at=(0.3, 0.45), face_px=130, rotation_deg=10, flip=True)],
    "soft": [Placement("grace_hopper", at=(0.55, 0.4), face_px=110, blur=1.5)],
}
# name → (people, products, seed); composed on first use, so collecting this module stays cheap.
SCENE_SPECS = {
    "enroll": ([Placement("grace_hopper", at=(0.5, 0.42), face_px=150)], (), 1),
    "astronaut": ([Placement("astronaut", at=(0.45, 0.4), face_px=130)], (), 2),
    "both": (
        [Placement("grace_hopper", at=(0.3, 0.4), face_px=120), Placement("astronaut", at=(0.7, 0.42), face_px=110)],
        COUNTER,
        3,
    ),
    "empty": ([], COUNTER, 4),
    "tiny": ([Placement("grace_hopper", at=(0.85, 0.3), face_px=40)], (), 5),  # RecognitionConfig.min_face_px
    **{name: (people, COUNTER, 10 + i) for i, (name, people) in enumerate(GRACE_VARIANTS.items())},
}


@functools.cache
def scene(name: str) -> Scene:
    people, products, seed = SCENE_SPECS[name]
    return compose_scene(people, products, seed=seed)


@pytest.fixture(scope="module")
def backend() -> LocalFaceBackend:
    return LocalFaceBackend()


@pytest.fixture(scope="module")
def faces_in(backend: LocalFaceBackend) -> Callable[[str], list[DetectedFace]]:
    """Detections of a named scene, computed once per module."""
    cache: dict[str, list[DetectedFace]] = {}

    def faces(name: str) -> list[DetectedFace]:
        if name not in cache:
            cache[name] = backend.detect(scene(name).image)
        return cache[name]

    return faces


@pytest.fixture(scope="module")
def watchlist(faces_in) -> LocalFaceBackend:
    """A backend with both people enrolled, each from a scene of their own."""
    listed = LocalFaceBackend()
    listed.enroll(GRACE, faces_in("enroll")[0])
    listed.enroll(ASTRO, faces_in("astronaut")[0])
    return listed


def iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def face_of(pictured: Scene, faces: list[DetectedFace], person: str) -> DetectedFace:
    truth = next(f.box for f in pictured.faces if f.person == person)
    return max(faces, key=lambda f: iou(f.box, truth))


def test_similarity_maps_distance_monotonically_with_0_6_at_80() -> None:
    assert similarity(0.6) == pytest.approx(80.0)
    assert similarity(0.0) == 100.0
    assert similarity(3.0) == 0.0 and similarity(10.0) == 0.0 and similarity(-1.0) == 100.0
    values = [similarity(d) for d in np.linspace(0, 4, 401)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert similarity(0.3) > similarity(0.59) > 80 > similarity(0.61)
    assert distance_for(0) == float("inf")
    for s in (50.0, 80.0, 90.0, 100.0):
        assert similarity(distance_for(s)) == pytest.approx(s)


@pytest.mark.parametrize("name", sorted(SCENE_SPECS))
def test_every_face_is_found_where_it_was_pasted(faces_in, name: str) -> None:
    truths, faces = scene(name).faces, faces_in(name)
    assert len(faces) == len(truths)
    for truth in truths:
        assert max(iou(f.box, truth.box) for f in faces) > 0.5, truth.person


def test_a_detected_face_carries_quality_crop_and_descriptor(faces_in) -> None:
    for name in ("enroll", "small_left", "tiny"):
        (face,) = faces_in(name)
        assert 0.0 <= face.quality <= 1.0 and 0.0 <= face.sharpness <= 1.0
        crop = Image.open(io.BytesIO(face.crop))
        assert crop.format == "JPEG" and min(crop.size) >= 80
        assert isinstance(face.handle, np.ndarray) and face.handle.shape == (128,) and face.handle.dtype == np.float32
    big, small = faces_in("enroll")[0], faces_in("small_left")[0]
    assert big.size_px == pytest.approx(150, abs=15) and small.size_px == pytest.approx(60, abs=10)
    assert big.quality > small.quality
    assert faces_in("soft")[0].sharpness < big.sharpness


def test_scenes_are_deterministic_given_the_seed() -> None:
    people = [Placement("astronaut", at=(0.4, 0.4), rotation_deg=5, flip=True)]
    first, again = compose_scene(people, COUNTER, seed=7), compose_scene(people, COUNTER, seed=7)
    assert first == again and compose_scene(people, COUNTER, seed=8).image != first.image
    assert [p.label for p in first.products] == ["cereal", "tv"] and all(p.color for p in first.products)
    assert Image.open(io.BytesIO(first.image)).size == (1280, 720)


def test_the_astronauts_mission_patch_is_not_a_face() -> None:
    """dlib's HOG proposes the patch on the source photo (score ~0.1); the CNN second opinion drops it."""
    from skimage import data

    photo = io.BytesIO()
    Image.fromarray(data.astronaut()).save(photo, "PNG")
    (face,) = LocalFaceBackend().detect(photo.getvalue())
    assert iou(face.box, (175 / 512, 76 / 512, 266 / 512, 167 / 512)) > 0.8  # her head, not the patch
    unverified = LocalFaceBackend(verify_below=float("-inf")).detect(photo.getvalue())
    assert len(unverified) == 2


@pytest.mark.parametrize("name", sorted(GRACE_VARIANTS))
def test_grace_hopper_is_found_in_other_scenes(watchlist, faces_in, name: str) -> None:
    (face,) = faces_in(name)
    everyone = watchlist.search(face, person_ids=None, min_similarity=0)
    print(f"{name}: " + ", ".join(f"{m.person_id} {m.similarity:.1f}" for m in everyone))
    assert [m.person_id for m in everyone] == [GRACE, ASTRO]  # she is the best match
    grace, astro = everyone
    assert grace.similarity >= 85 and astro.similarity < REVIEW
    assert grace.similarity - astro.similarity >= 10
    assert watchlist.search(face, person_ids=None, min_similarity=REVIEW) == [grace]


def test_the_astronaut_is_not_matched_to_grace_hopper(faces_in) -> None:
    only_grace = LocalFaceBackend()
    only_grace.enroll(GRACE, faces_in("enroll")[0])
    for name in ("astronaut", "both"):
        astro = face_of(scene(name), faces_in(name), "astronaut")
        (match,) = only_grace.search(astro, person_ids=None, min_similarity=0)
        print(f"astronaut in {name} vs Grace Hopper: {match.similarity:.1f}")
        assert match.similarity < REVIEW
        assert only_grace.search(astro, person_ids=None, min_similarity=REVIEW) == []


def test_two_people_in_one_scene_each_match_only_themselves(watchlist, faces_in) -> None:
    faces = faces_in("both")
    assert len(faces) == 2
    for person, expected in (("grace_hopper", GRACE), ("astronaut", ASTRO)):
        matches = watchlist.search(face_of(scene("both"), faces, person), person_ids=None, min_similarity=REVIEW)
        assert [m.person_id for m in matches] == [expected]


def test_an_empty_counter_has_no_faces(faces_in) -> None:
    assert faces_in("empty") == []


def test_a_picture_that_is_no_image_is_refused(backend: LocalFaceBackend) -> None:
    with pytest.raises(ValueError, match="not a readable picture"):
        backend.detect(b"not an image")
    with pytest.raises(ValueError):
        backend.search(
            DetectedFace((0, 0, 1, 1), 1.0, 100, 1.0, b"", handle=np.zeros(128, np.float32)),
            person_ids=None,
            min_similarity=101,
        )


def test_search_is_restricted_to_the_given_people(watchlist, faces_in) -> None:
    face = faces_in("dim")[0]
    assert [m.person_id for m in watchlist.search(face, person_ids={GRACE}, min_similarity=REVIEW)] == [GRACE]
    assert watchlist.search(face, person_ids=[ASTRO], min_similarity=0)[0].person_id == ASTRO
    assert watchlist.search(face, person_ids={ASTRO}, min_similarity=REVIEW) == []
    assert watchlist.search(face, person_ids=(), min_similarity=0) == []
    assert watchlist.search(face, person_ids={"p-unknown"}, min_similarity=0) == []


def test_best_match_per_person_best_first(faces_in) -> None:
    listed = LocalFaceBackend()
    listed.enroll(GRACE, faces_in("enroll")[0])
    listed.enroll(GRACE, faces_in("bright")[0])
    listed.enroll(ASTRO, faces_in("astronaut")[0])
    matches = listed.search(faces_in("dim")[0], person_ids=None, min_similarity=0)
    assert [m.person_id for m in matches] == [GRACE, ASTRO]
    assert matches[0].similarity > matches[1].similarity


def test_enroll_returns_the_descriptor_and_searching_keeps_nothing(faces_in) -> None:
    face = faces_in("enroll")[0]
    listed = LocalFaceBackend()
    enrolled = listed.enroll(GRACE, face)
    assert enrolled.backend_face_id is None
    assert np.array_equal(np.frombuffer(enrolled.descriptor, "<f4"), face.handle)
    for name in ("both", "dim", "astronaut"):
        for found in faces_in(name):
            listed.search(found, person_ids=None, min_similarity=0)
    assert listed.gallery_size() == 1  # searched faces are never added or cached


def test_enroll_without_a_handle_finds_the_face_in_its_crop(faces_in) -> None:
    """After a restart a face has only its stored crop: the backend describes it again."""
    face = faces_in("enroll")[0]
    listed = LocalFaceBackend()
    listed.enroll(GRACE, dataclasses.replace(face, handle=None))
    (match,) = listed.search(faces_in("bright")[0], person_ids=None, min_similarity=REVIEW)
    assert match.person_id == GRACE and match.similarity >= 85


def test_forget_removes_the_person(faces_in) -> None:
    listed = LocalFaceBackend()
    listed.enroll(GRACE, faces_in("enroll")[0])
    listed.enroll(GRACE, faces_in("bright")[0])
    listed.enroll(ASTRO, faces_in("astronaut")[0])
    listed.forget(GRACE, [])
    assert listed.search(faces_in("dim")[0], person_ids=None, min_similarity=REVIEW) == []
    assert [m.person_id for m in listed.search(faces_in("dim")[0], person_ids=None, min_similarity=0)] == [ASTRO]
    assert listed.gallery_size() == 1


class FakeWatchlistTable:
    """Stands in for the database: rows of (person_id, descriptor bytes) and a version that changes with them."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, bytes]] = []
        self.version, self.loads = 0, 0

    def load(self) -> list[tuple[str, bytes]]:
        self.loads += 1
        return list(self.rows)

    def change(self, rows: list[tuple[str, bytes]]) -> None:
        self.rows, self.version = rows, self.version + 1


def test_gallery_reloads_only_when_its_version_changes(faces_in) -> None:
    grace = faces_in("enroll")[0]
    descriptor = LocalFaceBackend().enroll(GRACE, grace).descriptor
    table = FakeWatchlistTable()
    listed = LocalFaceBackend(load_gallery=table.load, gallery_version=lambda: table.version)
    query = faces_in("bright")[0]
    assert listed.search(query, person_ids=None, min_similarity=REVIEW) == []
    listed.search(query, person_ids=None, min_similarity=REVIEW)
    assert table.loads == 1
    table.change([(GRACE, descriptor), ("p-broken", b"\x00" * 10)])  # a malformed row is skipped, not fatal
    assert [m.person_id for m in listed.search(query, person_ids=None, min_similarity=REVIEW)] == [GRACE]
    assert table.loads == 2 and listed.gallery_size() == 1
    table.change([])
    assert listed.search(query, person_ids=None, min_similarity=REVIEW) == []
    assert table.loads == 3


def test_concurrent_searches_while_the_gallery_changes(faces_in) -> None:
    descriptor = LocalFaceBackend().enroll(GRACE, faces_in("enroll")[0]).descriptor
    table = FakeWatchlistTable()
    table.change([(GRACE, descriptor)])
    listed = LocalFaceBackend(load_gallery=table.load, gallery_version=lambda: table.version)
    stranger = np.random.default_rng(0).normal(0, 0.1, 128).astype("<f4").tobytes()
    query, errors, seen = faces_in("bright")[0], [], []

    def searcher() -> None:
        try:
            for _ in range(200):
                seen.append(tuple(m.person_id for m in listed.search(query, person_ids=None, min_similarity=REVIEW)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(50):
        table.change([(GRACE, descriptor)] * (1 + i % 3) + [(ASTRO, stranger)])
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and set(seen) == {(GRACE,)}


def test_detection_in_worker_processes_finds_the_same_faces_and_matches(tmp_path) -> None:
    # dlib holds the GIL, so parallel analysis on the local backend runs detection in spawned processes.
    from vision.face_pool import PooledLocalFaceBackend

    picture = compose_scene(
        (Placement("grace_hopper", at=(0.3, 0.4), face_px=150), Placement("astronaut", at=(0.8, 0.4), face_px=120)),
        seed=2,
    ).image
    here = LocalFaceBackend()
    pooled = PooledLocalFaceBackend(LocalFaceBackend(), processes=2)
    try:
        assert pooled.prepare() == "ready"
        expected, found = here.detect(picture), pooled.detect(picture)
        assert [f.box for f in found] == [f.box for f in expected] and len(found) == 2
        assert all(np.allclose(a.handle, b.handle) for a, b in zip(found, expected, strict=True))
        enrolled = pooled.enroll("P-1", found[0])
        assert enrolled.descriptor is not None
        again = pooled.detect(compose_scene((Placement("grace_hopper", at=(0.4, 0.45), face_px=110),), seed=3).image)
        assert [m.person_id for m in pooled.search(again[0], person_ids=None, min_similarity=80)] == ["P-1"]
    finally:
        pooled.close()
