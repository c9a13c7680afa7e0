"""Shared by the picture tests: PNGs inline in markdown metadata, decoded."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image
import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INLINE_PNG = re.compile(r"^!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)$")


def decoded_png(png: bytes) -> np.ndarray:
    """The PNG's pixels (it must be a PNG)."""
    assert png.startswith(PNG_MAGIC)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def inline_png(markdown: str) -> bytes:
    """The PNG of a markdown image with a data: URI on the last line of ``markdown``."""
    match = INLINE_PNG.search(markdown.strip().splitlines()[-1])
    assert match, markdown[:200]
    return base64.b64decode(match.group(1))
