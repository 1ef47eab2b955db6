"""What the emulator needs to know of a photo: its format and pixel size, read from the header.

Telegram decodes every photo it receives (a user's or a bot's upload), refuses what is not an image
(``IMAGE_PROCESS_FAILED``) or has impossible dimensions (``PHOTO_INVALID_DIMENSIONS``), and stores
several sizes of it. The emulator reads the dimensions from the header of PNG, JPEG, GIF and WebP
files, with no imaging library (the sandbox is installed with the product, an imaging library only
with the tests), and describes the smaller sizes nominally: each size keeps the original bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Telegram's limits for photos (https://core.telegram.org/bots/api#sendphoto).
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_SIDES_SUM = 10_000
MAX_RATIO = 20
# Boxes of the sizes Telegram makes ("s", "m", "x"; the largest is capped at "y", 1280 px).
THUMB_BOXES = (90, 320, 800)
LARGEST_BOX = 1280

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageInfo:
    """A decoded header: the format's MIME type, the file suffix and the pixel size."""

    mime_type: str
    suffix: str
    width: int
    height: int

    def dimensions_ok(self) -> bool:
        """Telegram's rule: width + height ≤ 10000 and a ratio of at most 20."""
        small, large = sorted((self.width, self.height))
        return (
            small > 0 and self.width + self.height <= MAX_SIDES_SUM and large <= small * MAX_RATIO
        )

    def sizes(self) -> list[tuple[int, int]]:
        """The (width, height) of each size Telegram would store, smallest first."""
        longest = max(self.width, self.height)
        boxes = [box for box in THUMB_BOXES if box < longest]
        boxes.append(min(longest, LARGEST_BOX))
        return [self._fit(box) for box in boxes]

    def _fit(self, box: int) -> tuple[int, int]:
        scale = box / max(self.width, self.height)
        return max(1, round(self.width * scale)), max(1, round(self.height * scale))


def read_image(data: bytes) -> ImageInfo | None:
    """The format and size of a PNG, JPEG, GIF or WebP image; ``None`` for anything else."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return ImageInfo("image/png", "png", width, height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return ImageInfo("image/gif", "gif", width, height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
    except struct.error:
        return None
    return None


def _jpeg(data: bytes) -> ImageInfo | None:
    """Walk the JPEG markers to the first start-of-frame, which holds the size."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return ImageInfo("image/jpeg", "jpg", width, height)
        at += 2 + length
    return None


def _webp(data: bytes) -> ImageInfo | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("image/webp", "webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return ImageInfo("image/webp", "webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("image/webp", "webp", width, height)
    return None
