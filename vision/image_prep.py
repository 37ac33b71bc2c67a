"""Pictures made ready for a recognition service: checked, upright, within a byte limit, and cut into face crops.

Backend-neutral (no AWS here): services such as Rekognition take JPEG or PNG only, cap the
request size, and botocore checks neither, so the check and the resizing happen before any call.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from vision.types import Box

logger = logging.getLogger(__name__)

SENDABLE_FORMATS = frozenset({"JPEG", "PNG"})
MIN_CROP_SIDE_PX = 80  # Rekognition's smallest accepted image side; also keeps a ~40 px face inside the margin
CROP_MARGIN = 0.5  # of the face box's longer side, each way: face search needs some head and background
JPEG_QUALITY = 90
_MIN_SIDE_WHEN_SHRINKING = 80
_EXIF_ORIENTATION = 0x0112
# A 13000x13000 PNG compresses to 164 KB and decodes to ~500 MB: the pixel count is the limit, not the bytes.
DEFAULT_MAX_PIXELS = 40_000_000
_max_pixels = DEFAULT_MAX_PIXELS


class ImageRejected(ValueError):
    """The bytes cannot be used as a picture; the message says why in plain words."""


@dataclass(frozen=True)
class PreparedImage:
    """``data`` is what the service receives; ``image`` is the decoded, upright picture the crops are cut from."""

    data: bytes
    image: Image.Image
    reencoded: bool


def limit_pixels(max_pixels: int) -> None:
    """Pictures over ``max_pixels`` are refused before decoding, in this process (the composition root sets it).

    Pillow's own decompression-bomb check (``Image.MAX_IMAGE_PIXELS``, process-wide too) is pinned to the same
    limit, so an ``Image.open`` anywhere, ours or a library's, still refuses twice that and cannot be switched
    off by a default of None."""
    global _max_pixels
    if max_pixels < 1:
        raise ValueError("the pixel limit must be positive")
    _max_pixels = max_pixels
    Image.MAX_IMAGE_PIXELS = max_pixels


def max_pixels() -> int:
    return _max_pixels


def decode(data: bytes) -> tuple[Image.Image, str]:
    """Decode fully (a truncated file fails here, not halfway through a crop) and return the image and its format.

    ``Image.open`` reads the header only: the pixel count is checked there, before any pixel is decoded."""
    if not data:
        raise ImageRejected("the picture is empty")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > _max_pixels:
            raise ImageRejected(
                f"not a readable picture: {image.width}x{image.height} pixels is over the limit of {_max_pixels}"
            )
        image.load()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,  # raised, not warned, where warnings are errors
        OSError,
        SyntaxError,
        ValueError,
    ) as exc:
        if isinstance(exc, ImageRejected):
            raise
        raise ImageRejected(f"not a readable picture (JPEG or PNG expected): {type(exc).__name__}") from exc
    return image, (image.format or "").upper()


limit_pixels(DEFAULT_MAX_PIXELS)


def prepare(data: bytes, *, max_bytes: int) -> PreparedImage:
    """Pass JPEG/PNG within ``max_bytes`` through untouched; re-encode anything else as JPEG, shrinking until it fits.

    Pictures carrying an EXIF rotation are re-encoded upright too: services disagree on whether
    boxes refer to the stored or the rotated pixels, and our crops must use the same pixels.
    """
    image, fmt = decode(data)
    rotated = _exif_orientation(image) not in (None, 1)
    upright = ImageOps.exif_transpose(image) if rotated else image
    if fmt in SENDABLE_FORMATS and len(data) <= max_bytes and not rotated:
        return PreparedImage(data, upright, reencoded=False)
    encoded = encode_jpeg_within(upright, max_bytes=max_bytes)
    logger.info(
        "picture re-encoded for recognition: %s %d bytes -> JPEG %d bytes%s",
        fmt or "unknown",
        len(data),
        len(encoded),
        " (EXIF rotation applied)" if rotated else "",
    )
    return PreparedImage(encoded, upright, reencoded=True)


def prepare_crop(data: bytes, *, max_bytes: int, min_side: int = MIN_CROP_SIDE_PX) -> bytes:
    """A face crop from anywhere (ours, another backend's, the store) made sendable: format, size, smallest side."""
    prepared = prepare(data, max_bytes=max_bytes)
    if min(prepared.image.size) >= min_side:
        return prepared.data
    return encode_jpeg_within(_upscale(prepared.image, min_side), max_bytes=max_bytes)


def encode_jpeg_within(image: Image.Image, *, max_bytes: int, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG of ``image``, downscaled step by step until it fits ``max_bytes``."""
    current = _as_rgb(image)
    while True:
        buffer = io.BytesIO()
        current.save(buffer, format="JPEG", quality=quality)
        size = buffer.tell()
        if size <= max_bytes:
            return buffer.getvalue()
        if min(current.size) <= _MIN_SIDE_WHEN_SHRINKING:
            raise ImageRejected(f"the picture cannot be made smaller than {max_bytes} bytes")
        # JPEG size grows roughly with the pixel count; aim a little below the limit to save rounds.
        scale = max(0.5, math.sqrt(max_bytes / size) * 0.95)
        current = current.resize(
            (max(1, int(current.width * scale)), max(1, int(current.height * scale))), Image.Resampling.LANCZOS
        )


def clamp_box(left: float, top: float, width: float, height: float) -> Box:
    """A service's Left/Top/Width/Height box as normalised [x0, y0, x1, y1] inside the picture
    (detectors report faces cut by the edge with negative or >1 coordinates)."""

    def clip(value: float) -> float:
        return min(1.0, max(0.0, value))

    return (clip(left), clip(top), clip(left + width), clip(top + height))


def box_size_px(image: Image.Image, box: Box) -> int:
    """Shorter side of a normalised box, in pixels of ``image``."""
    return int(round(min((box[2] - box[0]) * image.width, (box[3] - box[1]) * image.height)))


def crop_region(image: Image.Image, box: Box, *, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """Pixel rectangle (left, top, right, bottom) that ``crop_face`` cuts: the face box plus a margin, inside the picture."""
    face_w, face_h = (box[2] - box[0]) * image.width, (box[3] - box[1]) * image.height
    pad = margin * max(face_w, face_h)
    left = max(0, math.floor(box[0] * image.width - pad))
    top = max(0, math.floor(box[1] * image.height - pad))
    right = min(image.width, math.ceil(box[2] * image.width + pad))
    bottom = min(image.height, math.ceil(box[3] * image.height + pad))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def box_in_region(image: Image.Image, box: Box, region: tuple[int, int, int, int]) -> Box:
    """A normalised box of the picture, normalised to ``region`` instead (upscaling the crop keeps it)."""
    left, top, right, bottom = region
    width, height = right - left, bottom - top

    def clip(value: float) -> float:
        return min(1.0, max(0.0, value))

    return (
        clip((box[0] * image.width - left) / width),
        clip((box[1] * image.height - top) / height),
        clip((box[2] * image.width - left) / width),
        clip((box[3] * image.height - top) / height),
    )


def crop_face(
    image: Image.Image,
    box: Box,
    *,
    max_bytes: int,
    margin: float = CROP_MARGIN,
    min_side: int = MIN_CROP_SIDE_PX,
    hide: Sequence[Box] = (),
) -> bytes:
    """JPEG of one face with a margin, cut from the full-resolution picture, upscaled to ``min_side`` when small.

    ``hide``: other faces of the picture, painted over where they reach into the margin (outside this face's own
    box), so a service that searches the largest face of an image searches this one."""
    region = crop_region(image, box, margin=margin)
    crop = image.crop(region)
    if hide:
        crop = _hide_others(image, crop, box, region, hide)
    if min(crop.size) < min_side:
        crop = _upscale(crop, min_side)
    return encode_jpeg_within(crop, max_bytes=max_bytes)


def _hide_others(
    image: Image.Image, crop: Image.Image, box: Box, region: tuple[int, int, int, int], others: Sequence[Box]
) -> Image.Image:
    def pixels(b: Box) -> tuple[int, int, int, int]:
        inner = box_in_region(image, b, region)
        return (
            math.floor(inner[0] * crop.width),
            math.floor(inner[1] * crop.height),
            math.ceil(inner[2] * crop.width),
            math.ceil(inner[3] * crop.height),
        )

    own = pixels(box)
    kept = crop.crop(own)
    painted = _as_rgb(crop).copy()
    draw = ImageDraw.Draw(painted)
    for other in others:
        x0, y0, x1, y1 = pixels(other)
        if x1 > x0 and y1 > y0:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(128, 128, 128))
    painted.paste(_as_rgb(kept), own[:2])  # a neighbour's box may overlap this face: the face itself stays whole
    return painted


def _upscale(image: Image.Image, min_side: int) -> Image.Image:
    scale = min_side / min(image.size)
    size = (max(min_side, math.ceil(image.width * scale)), max(min_side, math.ceil(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB" or image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        # JPEG has no alpha: flatten on white rather than letting transparent pixels turn black.
        background = Image.new("RGB", image.size, "white")
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # a broken EXIF block must not refuse an otherwise good picture
        return None
    return int(value) if isinstance(value, int) else None
