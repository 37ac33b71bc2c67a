"""Synthetic product packages and counter scenes, drawn deterministically from a label and a seed.

Real packaging is planar, textured and printed with its name; so are these: a random pattern of
shapes, stripes and the label's name. The same (label, seed) always gives the same pixels, so a
reference photo for the catalog and the packages in a scene are the same "product" (tests, demo).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

PACKAGE_SIZE = (200, 280)  # width, height in pixels of a package at scale 1
SCENE_SIZE = (1280, 720)


@dataclass(frozen=True)
class Placement:
    """One package in a scene: its centre in pixels, its scale against PACKAGE_SIZE, a rotation in degrees."""

    label: str
    center: tuple[int, int]
    scale: float = 1.0
    angle: float = 0.0
    seed: int = 0


def _rng(*parts: object) -> np.random.Generator:
    # hashlib, not hash(): Python salts str hashes per process, and the pictures must not change between runs.
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return r, g, b


def package_image(label: str, seed: int = 0, size: tuple[int, int] = PACKAGE_SIZE) -> Image.Image:
    """The front of a product package: random shapes and stripes, a banner with the label's name."""
    rng = _rng("package", label, seed)
    width, height = size
    image = Image.new("RGB", size, _color(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(8, width // 3)), int(rng.integers(8, height // 3))
        shape = (x0, y0, x0 + w, y0 + h)
        if rng.random() < 0.5:
            draw.rectangle(shape, fill=_color(rng), outline=_color(rng), width=2)
        else:
            draw.ellipse(shape, fill=_color(rng), outline=_color(rng), width=2)
    for i in range(0, width, 12):  # a barcode-like strip: fine, high-contrast corners
        if rng.random() < 0.6:
            draw.rectangle((i, height - 40, i + int(rng.integers(2, 8)), height - 8), fill=(0, 0, 0))
    banner_top = int(height * 0.08)
    draw.rectangle((8, banner_top, width - 8, banner_top + 56), fill=(250, 250, 250), outline=(0, 0, 0), width=3)
    font = ImageFont.load_default(size=34)
    draw.text((width // 2, banner_top + 28), label[:10], fill=(10, 10, 10), font=font, anchor="mm")
    draw.rectangle((0, 0, width - 1, height - 1), outline=(0, 0, 0), width=4)
    return image


def package_png(label: str, seed: int = 0) -> bytes:
    """The reference photo of a catalog label (what a store would photograph once per SKU)."""
    return _encode(package_image(label, seed), "PNG")


def counter_background(size: tuple[int, int] = SCENE_SIZE, seed: int = 0) -> Image.Image:
    """A checkout counter: a soft gradient, blurred clutter and sensor noise, without any package."""
    rng = _rng("background", seed)
    width, height = size
    ramp = np.linspace(70, 150, width, dtype=np.float32)[None, :, None]
    base = np.broadcast_to(ramp, (height, width, 3)).copy()
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        draw.ellipse((x0, y0, x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 120))), fill=_color(rng))
    image = image.filter(ImageFilter.GaussianBlur(6))
    return add_noise(image, rng, sigma=6.0)


def add_noise(image: Image.Image, rng: np.random.Generator, *, sigma: float) -> Image.Image:
    noise = rng.standard_normal((image.height, image.width, 3), dtype=np.float32) * np.float32(sigma)
    pixels = np.asarray(image, dtype=np.float32) + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def paste_package(scene: Image.Image, placement: Placement) -> Image.Image:
    """Paste one package, scaled and rotated about its centre; returns a new image."""
    package = package_image(placement.label, placement.seed)
    w, h = (max(1, round(side * placement.scale)) for side in package.size)
    package = package.resize((w, h), Image.Resampling.BICUBIC).convert("RGBA")
    package = package.rotate(placement.angle, resample=Image.Resampling.BICUBIC, expand=True)
    out = scene.copy()
    cx, cy = placement.center
    out.paste(package, (cx - package.width // 2, cy - package.height // 2), package)
    return out


def counter_scene(placements: list[Placement], *, size: tuple[int, int] = SCENE_SIZE, seed: int = 0) -> bytes:
    """A JPEG of the counter with these packages on it, as a register camera would deliver it."""
    scene = counter_background(size, seed)
    for placement in placements:
        scene = paste_package(scene, placement)
    scene = add_noise(scene, _rng("scene-noise", seed), sigma=3.0)
    return _encode(scene, "JPEG")


def _encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **({"quality": 90} if kind == "JPEG" else {}))
    return buffer.getvalue()
