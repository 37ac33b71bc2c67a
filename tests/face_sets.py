"""Evaluation sets for ``python -m bot evaluate-faces`` built from the public-domain faces the project ships.

Only two real people ship in the installed packages (matplotlib's Grace Hopper, scikit-image's astronaut), so each
is pictured several times as a store camera might (scale, light, blur, tilt, mirror, place in the frame): those are
the genuine pairs, and each person is the impostor of the other. A third folder holds pictures with no face
(scikit-image's cat and coffee) for the quality gates to refuse. Every photo is deterministic.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from skimage import data

from simulation.scenes import Placement, compose_scene

SCENE_SIZE = (480, 360)  # small pictures: the local backend's cost grows with the pixels
# File names sort in the order enrollment tries them: the first photo of each person that passes the gates is enrolled.
VARIANTS: dict[str, dict[str, object]] = {
    "01-front.jpg": {"face_px": 150},
    "02-dim.jpg": {"face_px": 130, "brightness": 0.55},
    "03-bright.jpg": {"face_px": 130, "brightness": 1.35, "contrast": 0.8},
    "04-soft.jpg": {"face_px": 140, "blur": 1.2},
    "05-tilted.jpg": {"face_px": 130, "rotation_deg": 8.0},
    "06-mirrored.jpg": {"face_px": 130, "rotation_deg": -6.0, "flip": True},
    "07-far.jpg": {"face_px": 90, "at": (0.3, 0.45)},
    "08-side.jpg": {"face_px": 120, "at": (0.72, 0.5)},
}
# Blurred beyond the enrollment gate (sharpness), named to be tried first for one person.
BLURRED_FIRST = {"00-blurred.jpg": {"face_px": 150, "blur": 5.0}}
NO_FACE = "nobody"


def photo(person: str, seed: int, **placement: object) -> bytes:
    return compose_scene([Placement(person, **placement)], size=SCENE_SIZE, seed=seed).image  # type: ignore[arg-type]


def build_set(root: Path, *, variants: int = len(VARIANTS), blurred_first: str | None = "astronaut") -> Path:
    """``root`` with a folder per person: the first ``variants`` photos of each, and the folder without faces."""
    for n, person in enumerate(("grace_hopper", "astronaut")):
        folder = root / person
        folder.mkdir(parents=True, exist_ok=True)
        chosen = dict(list(VARIANTS.items())[:variants])
        if person == blurred_first:
            chosen = {**BLURRED_FIRST, **chosen}
        for i, (name, placement) in enumerate(chosen.items()):
            (folder / name).write_bytes(photo(person, seed=10 * n + i, **placement))
    nobody = root / NO_FACE
    nobody.mkdir(exist_ok=True)
    for name, pixels in (("cat.png", data.chelsea()), ("coffee.jpg", data.coffee())):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG" if name.endswith(".png") else "JPEG")
        (nobody / name).write_bytes(buffer.getvalue())
    return root
