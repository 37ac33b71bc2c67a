"""The enrollment quality gates (docs/product.md, "Responsible use"): one face, large enough, sharp enough.

Applied to what the backend finds in the stored crop, when the proposal is made (to say which
faces can be offered) and again when the face is enrolled (the decision that counts).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import EnrollmentConfig
from vision.types import DetectedFace


@dataclass(frozen=True)
class GateResult:
    face: DetectedFace | None  # the face the crop is about (its centre), even when a gate fails
    problem: str | None = None  # plain words for people; None when every gate passes
    code: str | None = None  # reason code for the audit log: no_face|several_faces|too_small|blurred


def check(found: list[DetectedFace], rules: EnrollmentConfig) -> GateResult:
    if not found:
        return GateResult(None, "no face can be found in the crop", "no_face")
    face = min(found, key=_off_centre)
    if len(found) > 1:
        return GateResult(face, f"{len(found)} faces in the crop; exactly one is needed", "several_faces")
    if face.size_px < rules.min_face_px:
        return GateResult(face, f"too small: {face.size_px} px, at least {rules.min_face_px} px", "too_small")
    if face.sharpness < rules.min_sharpness:
        return GateResult(
            face, f"not sharp enough: {face.sharpness:.2f}, at least {rules.min_sharpness:.2f}", "blurred"
        )
    return GateResult(face)


def _off_centre(face: DetectedFace) -> float:
    # A crop is cut around its face, so the face nearest the centre is the one it was cut for.
    return abs((face.box[0] + face.box[2]) / 2 - 0.5) + abs((face.box[1] + face.box[3]) / 2 - 0.5)
