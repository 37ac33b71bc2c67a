"""Counting catalog products offline: OpenCV SIFT feature matching against reference photos per label.

How: keypoints of the register picture are matched to each reference photo (nearest two, Lowe's
ratio test, scene to reference so that several copies of a product can all match), a homography
is fitted with RANSAC, the region it maps is checked against the reference cell by cell
(shared layouts such as a brand's banner would otherwise pass), and the found package is masked
out before looking for the next one. Where packages of two labels overlap, the better supported wins.

Honest limits: it recognises flat, textured, printed faces (boxes, labels, cans seen from the
front) seen roughly from the angle of the reference photo; it does not count transparent,
shiny, untextured, stacked or mostly hidden items, nor a package whose back faces the camera
unless that side has its own reference photo. A label without a usable reference is reported
"not checked" (``seen=None``), never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.types import ProductCount

logger = logging.getLogger(__name__)
MAX_SCENE_SIDE = 1600  # larger snapshots are scaled down: detail beyond this only slows SIFT down
MAX_REFERENCE_SIDE = 800
_THUMB = (96, 128)  # size at which a found region is compared with its reference, cell by cell
_GRID = 4  # cells per side: a shared banner or border fills only a few of them
_MARGIN = 0.1  # the package's rim is left out: borders look alike and catch the background


@dataclass(frozen=True)
class _Reference:
    points: np.ndarray  # (N, 2) float32 keypoint positions
    descriptors: np.ndarray  # (N, 128) float32 SIFT descriptors
    corners: np.ndarray  # (4, 1, 2) float32 outline of the photo
    size: tuple[int, int]  # width, height
    thumbnail: np.ndarray  # blurred, small: for the pixel check


@dataclass(frozen=True)
class _Instance:
    quad: np.ndarray  # (4, 2) corners of the package in the picture
    inliers: int
    similarity: float  # median cell correlation with the reference, up to 1


class LocalProductCounter:
    """A ``ProductCounter`` for the local backend. ``references`` maps a label to photos (PNG/JPEG bytes)
    of its packaging; several photos (other SKUs of the label, other faces) may be given."""

    def __init__(
        self,
        references: Mapping[str, Sequence[bytes]],
        *,
        min_inliers: int = 15,
        ratio: float = 0.75,
        min_similarity: float = 0.6,
        max_instances: int = 20,
    ):
        self.min_inliers, self.ratio = min_inliers, ratio
        self.min_similarity, self.max_instances = min_similarity, max_instances
        self._sift = cv2.SIFT.create()  # SIFT_create under its typed name
        self._matcher = cv2.BFMatcher(cv2.NORM_L2)
        self._references: dict[str, list[_Reference]] = {}
        for label, photos in references.items():
            usable = [ref for ref in (self._reference(photo) for photo in photos) if ref is not None]
            if len(usable) < len(photos):
                logger.warning(
                    "label %s: %d of %d reference photos unusable (undecodable or too plain)",
                    label,
                    len(photos) - len(usable),
                    len(photos),
                )
            if usable:
                self._references[label] = usable

    @property
    def labels(self) -> frozenset[str]:
        """Labels this counter can count; any other is "not checked"."""
        return frozenset(self._references)

    def count(self, image: bytes, labels: Collection[str]) -> list[ProductCount]:
        scene = _decode(image, MAX_SCENE_SIDE)
        if scene is None:
            logger.warning("product count: the picture could not be decoded; nothing checked")
            return [ProductCount(label, None) for label in labels]
        cv2.setRNGSeed(0)  # RANSAC samples at random: the same picture must always give the same count
        keypoints, descriptors = self._sift.detectAndCompute(scene, None)
        points = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
        countable = [label for label in labels if label in self._references]
        candidates = [
            (label, instance)
            for label in countable
            for instance in self._find_label(self._references[label], scene, points, descriptors)
        ]
        kept = _one_label_per_package(candidates)
        counts = []
        for label in labels:
            if label not in self._references:
                counts.append(ProductCount(label, None))
                continue
            mine = [instance for owner, instance in kept if owner == label]
            counts.append(ProductCount(label, len(mine), _confidence(mine)))
        return counts

    def _find_label(
        self, references: list[_Reference], scene: np.ndarray, points: np.ndarray, descriptors: Any
    ) -> list[_Instance]:
        found: list[_Instance] = []
        for reference in references:  # another photo of the label must not count the same package again
            found += self._find(reference, scene, points, descriptors, [instance.quad for instance in found])
        return found

    def _reference(self, photo: bytes) -> _Reference | None:
        gray = _decode(photo, MAX_REFERENCE_SIDE)
        if gray is None:
            return None
        keypoints, descriptors = self._sift.detectAndCompute(gray, None)
        if descriptors is None or len(keypoints) < self.min_inliers:
            return None
        height, width = gray.shape
        corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32).reshape(-1, 1, 2)
        points = np.array([kp.pt for kp in keypoints], dtype=np.float32).reshape(-1, 2)
        return _Reference(points, descriptors, corners, (width, height), _thumbnail(gray))

    def _find(
        self, ref: _Reference, scene: np.ndarray, points: np.ndarray, descriptors: Any, taken: list[np.ndarray]
    ) -> list[_Instance]:
        """Every instance of one reference, strongest first, outside the regions already taken."""
        if descriptors is None or len(descriptors) < 2:
            return []
        pairs = self._matcher.knnMatch(descriptors, ref.descriptors, k=2)
        good = [
            (p[0].queryIdx, p[0].trainIdx) for p in pairs if len(p) == 2 and p[0].distance < self.ratio * p[1].distance
        ]
        if len(good) < self.min_inliers:
            return []
        pairs_idx = np.array(good)
        dst, src = points[pairs_idx[:, 0]], ref.points[pairs_idx[:, 1]]
        alive = ~np.any([_inside(dst, quad) for quad in taken], axis=0) if taken else np.ones(len(dst), bool)
        found: list[_Instance] = []
        for _attempt in range(self.max_instances * 3):
            candidates = np.flatnonzero(alive)
            if len(candidates) < self.min_inliers or len(found) >= self.max_instances:
                break
            homography, mask = cv2.findHomography(src[candidates], dst[candidates], cv2.RANSAC, 5.0)
            if homography is None:
                break
            inliers = candidates[mask.ravel().astype(bool)]
            if len(inliers) < self.min_inliers:
                break
            alive[inliers] = False  # whatever the verdict, these matches are spent
            instance = self._verify(ref, scene, homography, len(inliers))
            if instance is not None:
                found.append(instance)
                alive &= ~_inside(dst, instance.quad)
        return found

    def _verify(self, ref: _Reference, scene: np.ndarray, homography: np.ndarray, inliers: int) -> _Instance | None:
        """A plausible outline whose pixels look like the reference, or None."""
        quad = cv2.perspectiveTransform(ref.corners, homography).reshape(4, 2)
        if not _plausible(quad):
            return None
        # The homography maps reference → scene; WARP_INVERSE_MAP samples the scene in the reference's frame.
        warped = cv2.warpPerspective(scene, homography, ref.size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        similarity = _similarity(_thumbnail(warped), ref.thumbnail)
        if similarity < self.min_similarity:
            return None
        return _Instance(quad, inliers, min(similarity, 1.0))


def load_references(catalog: Iterable[Any], root: Path) -> dict[str, list[bytes]]:
    """Reference photos per label from catalog items' ``reference_images`` (paths relative to ``root``)."""
    references: dict[str, list[bytes]] = {}
    for item in catalog:
        for name in getattr(item, "reference_images", ()) or ():
            references.setdefault(item.label, []).append((root / name).read_bytes())
    return references


def _decode(image: bytes, max_side: int) -> np.ndarray | None:
    gray = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE) if image else None
    if gray is None:
        return None
    scale = max_side / max(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return gray


def _thumbnail(gray: np.ndarray) -> np.ndarray:
    height, width = gray.shape
    dx, dy = int(width * _MARGIN), int(height * _MARGIN)
    small = cv2.resize(gray[dy : height - dy, dx : width - dx], _THUMB, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)


def _similarity(found: np.ndarray, reference: np.ndarray) -> float:
    """Median, over a grid of cells, of the normalised correlation with the reference: the whole package
    must look right, not only its brand banner (a variant with the same banner scores about 0.2)."""
    scores = []
    cell_w, cell_h = _THUMB[0] // _GRID, _THUMB[1] // _GRID
    for row in range(_GRID):
        for col in range(_GRID):
            cell = np.s_[row * cell_h : (row + 1) * cell_h, col * cell_w : (col + 1) * cell_w]
            a, b = found[cell].ravel(), reference[cell].ravel()
            a, b = a - a.mean(), b - b.mean()
            if b.std() < 4:  # a flat cell of the reference says nothing either way
                continue
            norm = float(np.linalg.norm(a) * np.linalg.norm(b))
            scores.append(float(a @ b) / norm if norm else 0.0)
    return float(np.median(scores)) if scores else 0.0


def _plausible(quad: np.ndarray) -> bool:
    """A package seen from a camera: a convex outline of reasonable size, no side collapsed or stretched."""
    if not cv2.isContourConvex(quad.astype(np.float32)) or cv2.contourArea(quad.astype(np.float32)) < 400:
        return False
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)
    if sides.min() < 10:
        return False
    return (
        max(sides[0], sides[2]) / min(sides[0], sides[2]) < 3 and max(sides[1], sides[3]) / min(sides[1], sides[3]) < 3
    )


def _inside(points: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Which points lie in a convex quadrilateral (all edge cross products of one sign)."""
    edges = np.roll(quad, -1, axis=0) - quad
    rel = points[:, None, :] - quad[None, :, :]
    cross = edges[None, :, 0] * rel[:, :, 1] - edges[None, :, 1] * rel[:, :, 0]
    return np.all(cross >= 0, axis=1) | np.all(cross <= 0, axis=1)


def _one_label_per_package(candidates: list[tuple[str, _Instance]]) -> list[tuple[str, _Instance]]:
    """Where instances of different labels overlap, the best supported one is the package."""
    kept: list[tuple[str, _Instance]] = []
    for label, instance in sorted(candidates, key=lambda c: c[1].inliers * c[1].similarity, reverse=True):
        centre = instance.quad.mean(axis=0, keepdims=True)
        if not any(
            _inside(centre, other.quad)[0] or _inside(other.quad.mean(axis=0, keepdims=True), instance.quad)[0]
            for _, other in kept
        ):
            kept.append((label, instance))
    return kept


def _confidence(found: list[_Instance]) -> float | None:
    """The weakest instance's pixel similarity; None when nothing was found (no instance to vouch for)."""
    return round(min(i.similarity for i in found), 2) if found else None
