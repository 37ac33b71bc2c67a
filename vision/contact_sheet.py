"""The faces of an enrollment proposal side by side, each numbered as on the proposal card.

Cards carry no images of their own here (there is no public URL for a crop), so the crops travel
as one threaded picture; the numbers are the ones people pick on the card.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from vision.annotate import LABEL_TEXT, OUTLINE
from vision.image_prep import ImageRejected, decode

log = logging.getLogger(__name__)
TILE_PX = 220  # a face at about phone-thumbnail size, enough to recognise someone
GAP_PX = 12
PER_ROW = 4
JPEG_QUALITY = 88


def contact_sheet(crops: Sequence[tuple[int, bytes]]) -> bytes | None:
    """JPEG of the numbered crops in rows of four; None when none of them can be decoded."""
    tiles = []
    for number, data in crops:
        try:
            image, _ = decode(data)
        except ImageRejected:
            log.info("contact sheet: crop %d is not a readable picture; left out", number)
            continue
        tiles.append((number, _fit(image.convert("RGB"))))
    if not tiles:
        return None
    columns = min(PER_ROW, len(tiles))
    rows = (len(tiles) + PER_ROW - 1) // PER_ROW
    sheet = Image.new("RGB", (columns * (TILE_PX + GAP_PX) + GAP_PX, rows * (TILE_PX + GAP_PX) + GAP_PX), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=28)
    for index, (number, tile) in enumerate(tiles):
        x = GAP_PX + (index % PER_ROW) * (TILE_PX + GAP_PX) + (TILE_PX - tile.width) // 2
        y = GAP_PX + (index // PER_ROW) * (TILE_PX + GAP_PX) + (TILE_PX - tile.height) // 2
        sheet.paste(tile, (x, y))
        left, top, right, bottom = draw.textbbox((0, 0), str(number), font=font)
        draw.rectangle((x, y, x + right - left + 12, y + bottom - top + 12), fill=OUTLINE)
        draw.text((x + 6 - left, y + 6 - top), str(number), fill=LABEL_TEXT, font=font)
    out = io.BytesIO()
    sheet.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _fit(image: Image.Image) -> Image.Image:
    scale = TILE_PX / max(image.size)
    return image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
    )
