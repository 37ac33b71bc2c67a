"""The evidence photo: the checkout picture with each face boxed and numbered as on the cards.

Sent as a threaded file after the alert card, so the numbers people pick from in the enrollment
proposal are the ones they see. Drawn thick enough to read on a phone at full-width scale.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import ImageDraw, ImageFont, ImageOps

from vision.image_prep import decode
from vision.types import Box

OUTLINE = (255, 214, 0)  # a saturated yellow: visible on skin, clothes and dark or light backgrounds
LABEL_TEXT = (0, 0, 0)
JPEG_QUALITY = 88


def annotate(image: bytes, boxes: Sequence[Box]) -> bytes:
    """JPEG of ``image`` (upright, same size) with box i drawn and labelled i+1; boxes are normalised x0, y0, x1, y1.

    The picture is turned upright first, as for detection, so the boxes land on the same pixels."""
    picture, _ = decode(image)
    picture = ImageOps.exif_transpose(picture).convert("RGB")
    width, height = picture.size
    line = max(3, round(min(width, height) / 100))  # ~2 px still after a phone scales 1080p to ~400 px
    font = _font(max(14, round(min(width, height) / 18)))
    draw = ImageDraw.Draw(picture)
    for number, box in enumerate(boxes, start=1):
        left, top, right, bottom = _pixels(box, width, height)
        draw.rectangle((left, top, right, bottom), outline=OUTLINE, width=line)
        _label(draw, str(number), (left, top, bottom), font, picture.size)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _pixels(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """Normalised box to pixel corners, clamped inside the picture (detectors may overshoot the edge)."""
    x0, y0, x1, y1 = (min(max(value, 0.0), 1.0) for value in box)
    left, right = sorted((round(x0 * (width - 1)), round(x1 * (width - 1))))
    top, bottom = sorted((round(y0 * (height - 1)), round(y1 * (height - 1))))
    return left, top, right, bottom


def _label(
    draw: ImageDraw.ImageDraw,
    number: str,
    box: tuple[int, int, int],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    size: tuple[int, int],
) -> None:
    """The number in a filled tag above the box's left corner (below it when the box touches the top), kept in the picture."""
    (left, top, bottom), (width, height) = box, size
    x0, y0, x1, y1 = draw.textbbox((0, 0), number, font=font)
    pad = max(2, (y1 - y0) // 4)
    tag_w, tag_h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    tag_left = max(min(left, width - 1 - tag_w), 0)
    tag_top = top - tag_h if top - tag_h >= 0 else min(bottom, height - 1 - tag_h)
    draw.rectangle((tag_left, tag_top, tag_left + tag_w, tag_top + tag_h), fill=OUTLINE)
    draw.text((tag_left + pad - x0, tag_top + pad - y0), number, fill=LABEL_TEXT, font=font)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` (scalable when Pillow has FreeType, a fixed bitmap otherwise)."""
    return ImageFont.load_default(size=size)
