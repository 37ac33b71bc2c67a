"""The interfaces between the pipeline and the outside services that see: cameras and recognition."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.waiting import Waits

Box = tuple[float, float, float, float]  # normalised [x0, y0, x1, y1]


class CameraError(Exception):
    """A camera call failed. ``reason`` is plain words for people (never a URL); ``retry`` says if trying later can help."""

    def __init__(self, reason: str, *, retry: bool, retry_after_s: float | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.retry_after_s = reason, retry, retry_after_s


class RecognitionError(Exception):
    """A recognition call failed or was refused. ``reason`` is plain words (never image data);
    ``retry`` says whether trying the same thing later can help (throttling) or not (no face); ``code`` is the
    service's own error code when it gave one (``ResourceNotFoundException``)."""

    def __init__(self, reason: str, *, retry: bool, code: str | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.code = reason, retry, code


@dataclass(frozen=True)
class Picture:
    content: bytes
    content_type: str  # image/jpeg or image/png


class Camera(Protocol):
    def snapshot(self, serial: str, *, org_id: str, at: datetime | None) -> Picture:
        """Ask for a snapshot (live when ``at`` is None), wait until it is ready, download it.
        The camera's image URL stays inside this call: never logged, stored or returned."""

    def snapshot_waits(self, serial: str, *, org_id: str, at: datetime | None) -> Waits[Picture]:
        """``snapshot`` that yields its waits for the picture instead of sleeping (core/waiting.py)."""

    def video_link(self, serial: str, *, org_id: str, at: datetime) -> str | None:
        """Dashboard link to the footage at that moment (needs a login; safe to store and show)."""


@dataclass(frozen=True)
class DetectedFace:
    box: Box
    quality: float  # 0–1, from size, sharpness and pose
    size_px: int  # shorter side of the face box in pixels
    sharpness: float  # 0–1
    crop: bytes  # JPEG of the face with a margin, for cards and enrollment
    handle: Any = field(
        default=None, compare=False, repr=False
    )  # backend's in-memory data (e.g. a descriptor); never stored


@dataclass(frozen=True)
class FaceMatch:
    person_id: str
    similarity: float  # 0–100 on every backend


@dataclass(frozen=True)
class EnrolledFace:
    backend_face_id: str | None  # Rekognition FaceId; None on the local backend
    descriptor: bytes | None  # local backend's 128-d descriptor (float32 bytes); None on Rekognition


class FaceBackend(Protocol):
    name: str

    def prepare(self) -> str:
        """Make the backend usable (create what a fresh account lacks) once at start; ``"ready"`` or what is wrong,
        in plain words, for /readyz and ``status``."""

    def detect(self, image: bytes) -> list[DetectedFace]:
        """Every face in the picture with its box and quality (not only the largest)."""

    def search(
        self, face: DetectedFace, *, person_ids: Collection[str] | None, min_similarity: float
    ) -> list[FaceMatch]:
        """Watchlist entries this face resembles at or above ``min_similarity``, best first,
        restricted to ``person_ids`` when given (regional or per-store watchlists)."""

    def enroll(self, person_id: str, face: DetectedFace) -> EnrolledFace:
        """Add a face to a watchlist person (creating the person on the backend if needed)."""

    def forget(self, person_id: str, backend_face_ids: Collection[str]) -> None:
        """Erase a person from the backend: faces, user vectors, everything."""


@dataclass(frozen=True)
class ProductCount:
    label: str
    seen: int | None  # None: this backend cannot count this label ("not checked", never a guess)
    confidence: float | None = None


class ProductCounter(Protocol):
    def count(self, image: bytes, labels: Collection[str]) -> list[ProductCount]:
        """How many of each catalog label are visible in the picture."""
