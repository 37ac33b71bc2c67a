"""The embedded recognition backend: dlib's HOG detector, 5-point landmarks and 128-d ResNet descriptors, offline.

The watchlist gallery is one in-memory (N, 128) float32 matrix, filled through two callables the
composition root injects (this module never imports storage) and reloaded only when their version
changes. A searched face's descriptor lives only in ``DetectedFace.handle`` and is never kept:
only enrolled faces have stored descriptors (docs/product.md, "Responsible use").
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import cv2
import dlib
import numpy as np
from PIL import Image, ImageOps

from vision import image_prep
from vision.types import DetectedFace, EnrolledFace, FaceMatch

log = logging.getLogger(__name__)

DIMENSIONS = 128
# dlib's documented decision threshold: distances below 0.6 are the same person (99.38 % on LFW).
# docs/product.md pins it to similarity 80, the default review_threshold.
REVIEW_DISTANCE = 0.6
# Linear with the slope that puts 0.6 at 80: 100 - d·100/3. Same person ≈ 0.14 → 95, a strong
# match of 0.3 → 90 (the default match_threshold), two different people ≈ 0.7 → 77. Linear keeps
# thresholds easy to reason about in both directions (distance = 3·(100 − similarity)/100).
_POINTS_PER_DISTANCE = (100 - 80) / REVIEW_DISTANCE
# Sharpness is the variance of the Laplacian over the variance of the grey levels of the 150 px
# aligned chip (dividing removes contrast, so dim light does not read as blur), mapped by
# 1 − exp(−ratio / scale). Measured on 100 px test faces: sharp 0.05 (smooth skin) to 0.2
# (wrinkles), 1 px Gaussian blur 0.013–0.03, 2 px 0.005–0.008, a 45 px face upscaled 0.016–0.05.
# Scale 0.02 puts 2 px of blur around EnrollmentConfig.min_sharpness (0.3).
SHARPNESS_SCALE = 0.02
# The descriptor's 150 px chip (padding 0.25) spans a face of 100 px: larger faces add no detail.
FULL_DETAIL_PX = 100
# HOG's SVM margin: real faces in the test scenes score 0.6–1.8, hard ones (15° tilt, 3 px blur)
# down to 0.16, the astronaut's mission patch 0.12. Below this, dlib's MMOD CNN must agree
# (it finds every real face above at confidence ~1.0 and not the patch); ~0.1–0.2 s per weak box.
VERIFY_BELOW = 0.5
VERIFY_FACE_PX = 90  # MMOD's smallest reliable face is ~80 px: scale the weak box to just above it
CROP_MAX_BYTES = 5 * 1024 * 1024  # as for Rekognition, so a crop from here can be enrolled anywhere

GalleryRows = Iterable[tuple[str, bytes]]


def similarity(distance: float) -> float:
    """Descriptor distance → similarity 0–100 (monotonically decreasing; 0.6 ↦ 80)."""
    return float(min(100.0, max(0.0, 100.0 - distance * _POINTS_PER_DISTANCE)))


def distance_for(min_similarity: float) -> float:
    """The largest distance whose similarity is still ``min_similarity`` (inverse of ``similarity``)."""
    return math.inf if min_similarity <= 0 else max(0.0, (100.0 - min_similarity) / _POINTS_PER_DISTANCE)


@dataclass(frozen=True)
class _Gallery:
    """An immutable snapshot: searches read it without a lock, writers swap in a new one."""

    version: object
    matrix: np.ndarray  # (N, 128) float32, one row per enrolled face
    sq_norms: np.ndarray  # (N,) float32, |row|², for the one-product distance
    owners: np.ndarray  # (N,) int32, row → index into person_ids
    person_ids: tuple[str, ...]

    @classmethod
    def of(cls, version: object, matrix: np.ndarray, owners: np.ndarray, person_ids: tuple[str, ...]) -> _Gallery:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        return cls(version, matrix, np.einsum("ij,ij->i", matrix, matrix), np.asarray(owners, np.int32), person_ids)

    @classmethod
    def load(cls, rows: GalleryRows, version: object) -> _Gallery:
        index: dict[str, int] = {}
        owners, blobs, skipped = [], [], 0
        for person_id, blob in rows:
            if blob is None or len(blob) != DIMENSIONS * 4:
                skipped += 1
                continue
            owners.append(index.setdefault(person_id, len(index)))
            blobs.append(bytes(blob))
        if skipped:
            log.warning("gallery: skipped %d descriptors of the wrong size", skipped)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(-1, DIMENSIONS)
        return cls.of(version, matrix, np.asarray(owners, np.int32), tuple(index))

    def with_face(self, person_id: str, descriptor: np.ndarray) -> _Gallery:
        ids = self.person_ids if person_id in self.person_ids else self.person_ids + (person_id,)
        matrix = np.vstack([self.matrix, descriptor.reshape(1, DIMENSIONS)])
        return _Gallery.of(self.version, matrix, np.append(self.owners, ids.index(person_id)), ids)

    def without(self, person_id: str) -> _Gallery:
        if person_id not in self.person_ids:
            return self
        keep = self.owners != self.person_ids.index(person_id)
        return _Gallery.of(self.version, self.matrix[keep], self.owners[keep], self.person_ids)


class _Models:
    """dlib's models, loaded once per process on first use and shared by every backend instance."""

    _instance: _Models | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        # face_recognition_models' own helper imports pkg_resources, which setuptools no longer ships.
        root = importlib.resources.files("face_recognition_models") / "models"
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(root / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(root / "dlib_face_recognition_resnet_model_v1.dat"))
        self.verifier = dlib.cnn_face_detection_model_v1(str(root / "mmod_human_face_detector.dat"))
        self.busy = threading.Lock()  # dlib's models are not documented as thread-safe: one caller at a time

    @classmethod
    def get(cls) -> _Models:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance


class LocalFaceBackend:
    """FaceBackend on this machine: every face, its quality, and a watchlist search over an in-memory matrix."""

    name = "local"

    def __init__(
        self,
        *,
        load_gallery: Callable[[], GalleryRows] | None = None,
        gallery_version: Callable[[], object] | None = None,
        upsample: int = 1,
        adjust_threshold: float = 0.0,
        max_side: int = 1920,
        verify_below: float = VERIFY_BELOW,
        num_jitters: int = 0,
    ) -> None:
        """``load_gallery`` yields (person_id, float32 descriptor bytes) of every enrolled face;
        ``gallery_version`` changes whenever they do (e.g. a counter or the latest enrollment time).
        ``upsample`` 1 lets the 80 px HOG window find 40 px faces; ``max_side`` bounds detection cost;
        HOG boxes scoring below ``verify_below`` count only if dlib's CNN face detector confirms them."""
        self._load_gallery = load_gallery
        self._gallery_version = gallery_version or (lambda: None if load_gallery is None else "loaded once")
        self._upsample, self._threshold, self._max_side = upsample, adjust_threshold, max_side
        self._verify_below, self._jitters = verify_below, num_jitters
        self._gallery: _Gallery | None = None
        self._lock = threading.Lock()

    def prepare(self) -> str:
        """Nothing to create: the models ship in pip packages and the gallery is the database."""
        return "ready"

    def detect(self, image: bytes) -> list[DetectedFace]:
        """Every face in a JPEG or PNG picture, largest first, with box, quality, crop and descriptor.
        An unreadable picture raises ``image_prep.ImageRejected`` (a ValueError), as on Rekognition."""
        picture = _decode(image)
        pixels = np.asarray(picture)
        models = _Models.get()
        with models.busy:
            rects = self._find(models, pixels)
            faces = [face for rect in rects if (face := _describe(models, picture, pixels, rect, self._jitters))]
        log.debug("detect: %d candidate boxes, %d faces", len(rects), len(faces))
        return sorted(faces, key=lambda f: -f.size_px)

    def search(
        self, face: DetectedFace, *, person_ids: Collection[str] | None, min_similarity: float
    ) -> list[FaceMatch]:
        """Best similarity per watchlist person at or above ``min_similarity``, best first."""
        if not 0 <= min_similarity <= 100:
            raise ValueError("min_similarity is 0-100")
        query = self._descriptor_of(face)
        gallery = self._current()
        if not len(gallery.matrix):
            return []
        # |a − b|² = |a|² − 2a·b + |b|²: one matrix-vector product instead of an (N, 128) difference.
        d2 = gallery.sq_norms - 2.0 * (gallery.matrix @ query) + float(query @ query)
        rows = np.flatnonzero(d2 <= distance_for(min_similarity) ** 2 + 1e-4)
        if person_ids is not None:
            wanted = set(person_ids)
            allowed = [i for i, p in enumerate(gallery.person_ids) if p in wanted]
            rows = rows[np.isin(gallery.owners[rows], allowed)]
        owners, distances = gallery.owners[rows], np.sqrt(np.maximum(d2[rows], 0.0))
        order = np.lexsort((distances, owners))  # by person, nearest first
        owners, distances = owners[order], distances[order]
        first = np.r_[True, owners[1:] != owners[:-1]] if len(owners) else np.zeros(0, bool)
        matches = [
            FaceMatch(gallery.person_ids[o], similarity(float(d)))
            for o, d in zip(owners[first], distances[first], strict=False)
        ]
        matches = [m for m in matches if m.similarity >= min_similarity]
        return sorted(matches, key=lambda m: (-m.similarity, m.person_id))

    def enroll(self, person_id: str, face: DetectedFace) -> EnrolledFace:
        """Add the face to the person in memory at once; the caller stores the returned descriptor."""
        descriptor = self._descriptor_of(face)
        self._current()
        with self._lock:
            if self._gallery is None:  # _current() loaded it just now; it is replaced, never dropped
                raise RuntimeError("the face gallery is not loaded")
            self._gallery = self._gallery.with_face(person_id, descriptor)
        log.info("enrolled a face for person %s", person_id)
        return EnrolledFace(backend_face_id=None, descriptor=descriptor.astype("<f4").tobytes())

    def forget(self, person_id: str, backend_face_ids: Collection[str]) -> None:
        """Drop every face of the person from memory (the stored descriptors are the caller's to delete)."""
        with self._lock:
            if self._gallery is not None:
                self._gallery = self._gallery.without(person_id)
        log.info("forgot person %s", person_id)

    def gallery_size(self) -> int:
        """Enrolled faces in memory (for status and metrics)."""
        return len(self._current().matrix)

    def _current(self) -> _Gallery:
        """The gallery for the current version, reloading once (under the lock) when it changed."""
        version = self._gallery_version()  # read before loading: a change during the load just reloads again
        gallery = self._gallery
        if gallery is not None and gallery.version == version:
            return gallery
        with self._lock:
            if self._gallery is None or self._gallery.version != version:
                rows = self._load_gallery() if self._load_gallery else ()
                self._gallery = _Gallery.load(rows, version)
                log.info(
                    "gallery loaded: %d faces of %d people", len(self._gallery.matrix), len(self._gallery.person_ids)
                )
            return self._gallery

    def _find(self, models: _Models, pixels: np.ndarray) -> list[dlib.rectangle]:
        """HOG boxes, found on a copy no larger than ``max_side`` and mapped back to full-size pixels."""
        scale = min(1.0, self._max_side / max(pixels.shape[:2]))
        small = pixels if scale == 1.0 else cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rects, scores, _kinds = models.detector.run(small, self._upsample, self._threshold)
        kept = [
            r for r, s in zip(rects, scores, strict=False) if s >= self._verify_below or _confirmed(models, small, r)
        ]
        if len(kept) < len(rects):
            log.debug("detect: %d weak boxes not confirmed as faces", len(rects) - len(kept))
        return [dlib.rectangle(*(round(v / scale) for v in (r.left(), r.top(), r.right(), r.bottom()))) for r in kept]

    def _descriptor_of(self, face: DetectedFace) -> np.ndarray:
        """The face's descriptor: from its handle, else found again in its crop (after a restart, say)."""
        if isinstance(face.handle, np.ndarray) and face.handle.shape == (DIMENSIONS,):
            return face.handle
        found = self.detect(face.crop)
        if not found:
            raise ValueError("no face found in the crop to describe")
        centred = min(found, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - 0.5) + abs((f.box[1] + f.box[3]) / 2 - 0.5))
        return centred.handle


def _decode(image: bytes) -> Image.Image:
    """JPEG or PNG bytes → an upright RGB picture (as the camera's EXIF says)."""
    picture, _format = image_prep.decode(image)
    return ImageOps.exif_transpose(picture).convert("RGB")


def _describe(
    models: _Models, picture: Image.Image, pixels: np.ndarray, rect: dlib.rectangle, jitters: int
) -> DetectedFace | None:
    """Landmarks, quality, crop and descriptor of one detector box (None if it is a sliver at the edge)."""
    height, width = pixels.shape[:2]
    x0, y0 = max(0, rect.left()), max(0, rect.top())
    x1, y1 = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    shape = models.landmarks(pixels, rect)
    pose = _frontal(np.array([(p.x, p.y) for p in shape.parts()], np.float64))
    chip = dlib.get_face_chip(pixels, shape, size=150, padding=0.25)
    descriptor = np.asarray(models.encoder.compute_face_descriptor(chip, jitters), np.float32)
    descriptor.setflags(write=False)
    size_px = min(x1 - x0, y1 - y0)
    sharpness = _sharpness(chip)
    detail = min(1.0, size_px / FULL_DETAIL_PX)
    # Geometric mean: any one weak factor (tiny, blurred or turned away) pulls quality down.
    quality = (detail * sharpness * pose) ** (1 / 3)
    box = (x0 / width, y0 / height, x1 / width, y1 / height)
    # The shared cropper (margin 0.5, at least 80 px a side) gives cards and enrollment the same
    # crops on both backends, with room for the re-detection in _descriptor_of.
    crop = image_prep.crop_face(picture, box, max_bytes=CROP_MAX_BYTES)
    return DetectedFace(
        box=box, quality=round(quality, 3), size_px=size_px, sharpness=round(sharpness, 3), crop=crop, handle=descriptor
    )


def _confirmed(models: _Models, pixels: np.ndarray, rect: dlib.rectangle) -> bool:
    """Second opinion on a weak HOG box: does dlib's CNN (MMOD) detector see a face centred in it?"""
    margin = round(0.3 * rect.width())
    x0, y0 = max(0, rect.left() - margin), max(0, rect.top() - margin)
    patch = pixels[y0 : rect.bottom() + margin, x0 : rect.right() + margin]
    if patch.size == 0:
        return False
    scale = VERIFY_FACE_PX / max(rect.width(), 1)
    patch = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    for found in models.verifier(patch, 0):
        cx, cy = found.rect.center().x / scale + x0, found.rect.center().y / scale + y0
        if rect.left() <= cx <= rect.right() and rect.top() <= cy <= rect.bottom():
            return True
    return False


def _frontal(points: np.ndarray) -> float:
    """Pose score 0–1 from the 5 landmarks' symmetry (two corners of each eye, base of the nose).

    A frontal nose is as far from one eye as from the other; turning the head (yaw) shortens one
    side. The ratio is 0.92–0.98 on the frontal test photos and falls towards 0 at a profile."""
    eye_a, eye_b, nose = points[0:2].mean(axis=0), points[2:4].mean(axis=0), points[4]
    near, far = sorted((float(np.linalg.norm(nose - eye_a)), float(np.linalg.norm(nose - eye_b))))
    return float(min(1.0, max(0.0, (near / max(far, 1e-6) - 0.5) / 0.4)))


def _sharpness(chip: np.ndarray) -> float:
    """Contrast-free variance of the Laplacian on the grey aligned chip, mapped to 0–1 (SHARPNESS_SCALE)."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float64)
    spread = float(grey.var())
    if spread < 1.0:  # a flat patch has no detail at all
        return 0.0
    return 1.0 - math.exp(-float(cv2.Laplacian(grey, cv2.CV_64F).var()) / spread / SHARPNESS_SCALE)
