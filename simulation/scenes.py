"""Synthetic checkout scenes: public-domain faces that ship in pip packages, pasted behind a counter.

The people are matplotlib's ``grace_hopper.jpg`` sample and scikit-image's ``data.astronaut()``,
both public domain. Each is cropped to the head before it enters a scene: the rest of the photo is
not a person (the astronaut's mission patch even fools dlib's HOG detector into a second "face").
Everything is deterministic given the seed, so tests can compare boxes and similarities.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Box = tuple[float, float, float, float]  # normalised [x0, y0, x1, y1], as in vision.types


@dataclass(frozen=True)
class _Source:
    crop: tuple[int, int, int, int]  # head region of the source photo, pixels [x0, y0, x1, y1]
    face: tuple[int, int, int, int]  # face box in the source photo as dlib's HOG detector frames it, checked by eye


_SOURCES = {
    "grace_hopper": _Source(crop=(120, 10, 420, 400), face=(180, 139, 366, 325)),
    # Ends above the shoulders: the mission patch at (126, 335)-(215, 425) must stay out.
    "astronaut": _Source(crop=(125, 0, 325, 235), face=(175, 76, 265, 166)),
}
PEOPLE: tuple[str, ...] = tuple(_SOURCES)


@dataclass(frozen=True)
class Placement:
    """One person in a scene: who, where the face's centre goes, how large, how lit and posed."""

    person: str  # one of PEOPLE
    at: tuple[float, float] = (0.5, 0.4)  # normalised centre of the face in the scene
    face_px: int = 120  # width of the face box in the scene, pixels (the scale)
    brightness: float = 1.0  # PIL ImageEnhance factors: 1.0 leaves the photo as it is
    contrast: float = 1.0
    rotation_deg: float = 0.0  # counter-clockwise head tilt; keep it small (HOG is trained on upright faces)
    flip: bool = False  # mirror left-right
    blur: float = 0.0  # Gaussian radius in scene pixels (focus, motion)


@dataclass(frozen=True)
class Product:
    """A product on the counter: a coloured box with its visual label written on it."""

    label: str
    box: Box
    color: tuple[int, int, int] | None = None  # None: chosen from the seed


@dataclass(frozen=True)
class SceneFace:
    person: str
    box: Box  # ground truth: where the face box was pasted, clipped to the scene


@dataclass(frozen=True)
class Scene:
    image: bytes  # JPEG
    width: int
    height: int
    faces: tuple[SceneFace, ...]
    products: tuple[Product, ...]  # as drawn, with their colours


def compose_scene(
    people: Sequence[Placement] = (),
    products: Sequence[Product] = (),
    *,
    size: tuple[int, int] = (1280, 720),
    seed: int = 0,
    noise: float = 3.0,
    jpeg_quality: int = 90,
) -> Scene:
    """A register camera's picture: wall, counter, the given people behind it and products on it."""
    rng = np.random.default_rng(seed)
    width, height = size
    canvas = _background(width, height, rng)
    faces = [_paste_person(canvas, placement) for placement in people]
    drawn = tuple(_draw_product(canvas, product, rng) for product in products)
    pixels: np.ndarray = np.asarray(canvas, dtype=np.float32)  # float64 once noise is added
    if noise > 0:  # sensor noise, so no two scenes share exact pixels
        pixels = pixels + rng.normal(0.0, noise, pixels.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=jpeg_quality)
    return Scene(image=out.getvalue(), width=width, height=height, faces=tuple(faces), products=drawn)


def head(person: str) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The person's head crop (RGB) and the face box inside it, in crop pixels."""
    if person not in _SOURCES:
        raise ValueError(f"unknown person {person!r}; known: {', '.join(PEOPLE)}")
    source = _SOURCES[person]
    x0, y0, _, _ = source.crop
    fx0, fy0, fx1, fy1 = source.face
    return _source_photo(person).crop(source.crop), (fx0 - x0, fy0 - y0, fx1 - x0, fy1 - y0)


@cache
def _source_photo(person: str) -> Image.Image:
    if person == "grace_hopper":
        from matplotlib import cbook

        sample = cbook.get_sample_data("grace_hopper.jpg")
        if isinstance(sample, np.ndarray):  # matplotlib loads only .npy samples as arrays; a .jpg is a file
            raise TypeError("grace_hopper.jpg came as an array")
        with sample as f:
            return Image.open(f).convert("RGB")
    from skimage import data

    return Image.fromarray(data.astronaut()).convert("RGB")


def _background(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A plain wall with a soft vertical gradient over a darker counter along the bottom."""
    wall = rng.uniform(150, 215, 3)
    counter = rng.uniform(60, 110, 3)
    shade = np.linspace(1.05, 0.9, height)[:, None, None]
    pixels = np.broadcast_to(wall * shade, (height, width, 3)).copy()
    top = int(height * 0.74)
    pixels[top:] = counter
    pixels[top : top + max(2, height // 120)] = counter * 0.6  # the counter's front edge
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _paste_person(canvas: Image.Image, p: Placement) -> SceneFace:
    """Scale, light, pose and paste one head so its face centre lands at ``p.at``; return its true box."""
    crop, (fx0, fy0, fx1, fy1) = head(p.person)
    if p.face_px < 8:
        raise ValueError("face_px must be at least 8")
    scale = p.face_px / (fx1 - fx0)
    w, h = max(1, round(crop.width * scale)), max(1, round(crop.height * scale))
    img = crop.resize((w, h), Image.Resampling.LANCZOS)
    img = ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(p.brightness)).enhance(p.contrast)
    rgba = img.convert("RGBA")
    rgba.putalpha(_oval_mask(w, h))
    cx, cy = (fx0 + fx1) / 2 * scale, (fy0 + fy1) / 2 * scale
    face_w, face_h = (fx1 - fx0) * scale, (fy1 - fy0) * scale
    if p.flip:
        rgba, cx = ImageOps.mirror(rgba), w - cx
    if p.rotation_deg:
        rgba, (cx, cy) = _rotate(rgba, p.rotation_deg, (cx, cy))
    if p.blur > 0:
        rgba = rgba.filter(ImageFilter.GaussianBlur(p.blur))
    ax, ay = p.at[0] * canvas.width, p.at[1] * canvas.height
    canvas.paste(rgba, (round(ax - cx), round(ay - cy)), rgba)
    box = (
        max(0.0, (ax - face_w / 2) / canvas.width),
        max(0.0, (ay - face_h / 2) / canvas.height),
        min(1.0, (ax + face_w / 2) / canvas.width),
        min(1.0, (ay + face_h / 2) / canvas.height),
    )
    return SceneFace(person=p.person, box=box)


def _oval_mask(w: int, h: int) -> Image.Image:
    """An oval vignette with a feathered edge, so the source photo's background fades into the wall."""
    feather = max(2, round(min(w, h) * 0.04))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((feather, feather, w - 1 - feather, h - 1 - feather), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(feather / 2))


def _rotate(img: Image.Image, degrees: float, point: tuple[float, float]) -> tuple[Image.Image, tuple[float, float]]:
    """Rotate counter-clockwise about the centre (expanding the canvas) and say where ``point`` went."""
    rotated = img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True)
    theta = math.radians(degrees)
    dx, dy = point[0] - img.width / 2, point[1] - img.height / 2
    # Image y grows downwards, so a visual counter-clockwise turn is this matrix.
    x = dx * math.cos(theta) + dy * math.sin(theta) + rotated.width / 2
    y = -dx * math.sin(theta) + dy * math.cos(theta) + rotated.height / 2
    return rotated, (x, y)


def _draw_product(canvas: Image.Image, product: Product, rng: np.random.Generator) -> Product:
    """Draw a product box with its label; return it with the colour actually used."""
    color = product.color
    if color is None:  # drawn only then: a given colour must leave the generator's sequence as it is
        r, g, b = (int(c) for c in rng.integers(40, 230, 3))
        color = (r, g, b)
    x0, y0, x1, y1 = product.box
    rect = (round(x0 * canvas.width), round(y0 * canvas.height), round(x1 * canvas.width), round(y1 * canvas.height))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle(rect, fill=color, outline=tuple(c // 2 for c in color), width=3)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    font = _font(max(10, (rect[3] - rect[1]) // 5))
    draw.text(((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2), product.label, fill=ink, font=font, anchor="mm")
    return Product(label=product.label, box=product.box, color=color)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType has only the fixed bitmap font
        return ImageFont.load_default()
