"""``python -m bot evaluate-faces DIR [--backend local|rekognition] [--out REPORT_DIR]``: how well face matching
does on the store's own photos, before it is switched on (README, "Responsible use").

``DIR`` holds one folder per person (staff volunteers, with their consent), each with JPEG or PNG photos from the
store's cameras. The run never touches the watchlist: the local backend gets an empty gallery of its own, and on
Rekognition a collection made for the run (``<REKOGNITION_COLLECTION_ID>-evaluation-<random>``) is created at
the start and deleted at the end, whatever happens in between. The figures (never the names or photos) are
recorded in the database, so ``check-config``, ``status`` and the stats page can say what was measured.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.clock import system_clock
from core.config import Config
from handlers.learning.face_evaluation import EvaluationRun, Photo, evaluate
from vision.types import FaceBackend, RecognitionError

PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
REKOGNITION_MAX_USERS = 500  # SearchUsersByImage's largest MaxUsers


def read_photos(directory: Path) -> dict[str, list[Photo]]:
    """person (folder name) -> their photos; hidden files and files directly in ``directory`` are not people."""
    people: dict[str, list[Photo]] = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        people[folder.name] = [
            Photo(folder.name, file.name, file.read_bytes())
            for file in sorted(folder.iterdir())
            if file.is_file() and not file.name.startswith(".") and file.suffix.lower() in PHOTO_SUFFIXES
        ]
    return people


def too_many_people(backend: str, people: int) -> str | None:
    """Past Rekognition's MaxUsers a search no longer names everyone above the floor."""
    if backend != "rekognition" or people <= REKOGNITION_MAX_USERS:
        return None
    return (
        f"warning: {people} people, but Rekognition names at most {REKOGNITION_MAX_USERS} per search: the "
        "lowest impostor scores of each search are cut off, so the false match rate is a lower bound"
    )


@contextmanager
def scratch_backend(config: Config, backend: str) -> Iterator[FaceBackend]:
    """A face backend that holds only what the run enrolls, gone afterwards."""
    if backend == "local":
        from vision.local_faces import LocalFaceBackend

        yield LocalFaceBackend()  # no gallery loader: an empty, in-memory gallery
        return
    from bot.adapters import rekognition_client
    from vision.rekognition import RekognitionFaceBackend

    collection = f"{config.env.rekognition_collection_id[:200]}-evaluation-{secrets.token_hex(4)}"
    # MaxUsers 500 (the API's largest): a search must give the similarity to every enrolled person above the floor.
    faces = RekognitionFaceBackend(rekognition_client(config), collection, max_users=REKOGNITION_MAX_USERS)
    faces.ensure_collection()
    try:
        yield faces
    finally:
        faces.delete_collection()


def run(config: Config, directory: Path, *, backend: str | None, out: Path) -> int:
    if not directory.is_dir():
        print(f"{directory} is not a folder of people's folders", file=sys.stderr)
        return 2
    photos = read_photos(directory)
    total = sum(len(p) for p in photos.values())
    if not photos or not total:
        print(f"{directory} has no person folders with JPEG or PNG photos in them", file=sys.stderr)
        return 2
    chosen = backend or config.env.recognition_backend
    if too_many := too_many_people(chosen, len(photos)):
        print(too_many, file=sys.stderr)
    recognition = config.business.recognition
    try:
        with scratch_backend(config, chosen) as faces, _progress(total) as advance:
            result = evaluate(
                photos,
                faces=faces,
                enrollment=config.business.enrollment,
                recognition=recognition,
                on_photo=lambda photo: advance(),
            )
    except RecognitionError as exc:  # the collection could not be made, or the backend stayed busy or unreachable
        print(f"the evaluation stopped: {exc.reason}", file=sys.stderr)
        return 1
    _report(config, result, out)
    return 0


def _report(config: Config, result: EvaluationRun, out: Path) -> None:
    from bot import evaluation_report
    from storage import migrate
    from storage.db import Database
    from storage.uow import UnitOfWork

    finished_at = system_clock()
    recognition = config.business.recognition
    report = evaluation_report.build(result, recognition, finished_at)
    paths = evaluation_report.write(report, out)
    print(evaluation_report.terminal_table(report), end="")
    migrate.upgrade(config.env.database_url)
    db = Database(config.env.database_url)
    try:
        with UnitOfWork(db, write=True) as uow:
            uow.face_evaluations.record(
                finished_at=finished_at,
                backend=result.backend,
                match_threshold=float(recognition.match_threshold),
                review_threshold=float(recognition.review_threshold),
                people=len(result.enrolled),
                photos=result.photos,
                genuine_comparisons=report.figures["genuine_comparisons"],
                impostor_comparisons=report.figures["impostor_comparisons"],
                refused_photos=result.refused_photos,
                figures=report.figures,
            )
            uow.commit()
    finally:
        db.dispose()
    print(f"report: {paths['html']} (numbers in {paths['json']}, chart {paths['chart']})")


@contextmanager
def _progress(total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (rich draws it only on a terminal), so the table on stdout stays clean."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("looking at photos"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("photos", total=total)
        yield lambda: progress.advance(task)
