"""A bar chart as a PNG, written in pure Python (zlib + struct): no imaging library in the bot.

The owner's statistics show bookings per starting hour; bars are labelled with the hour below and
the count above, in a 3x5 pixel digit font scaled up. Drawing is CPU work (a few milliseconds for
the default size): call :func:`bar_chart` in a worker thread.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

Color = tuple[int, int, int]

BACKGROUND: Color = (255, 255, 255)
BAR: Color = (52, 120, 246)
INK: Color = (60, 60, 60)
AXIS: Color = (200, 200, 200)

# 3x5 digits, rows top to bottom, 3 bits each (left bit first)
DIGITS = {
    "0": (7, 5, 5, 5, 7),
    "1": (2, 6, 2, 2, 7),
    "2": (7, 1, 7, 4, 7),
    "3": (7, 1, 7, 1, 7),
    "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7),
    "6": (7, 4, 7, 5, 7),
    "7": (7, 1, 2, 2, 2),
    "8": (7, 5, 7, 5, 7),
    "9": (7, 5, 7, 1, 7),
}


class Canvas:
    def __init__(self, width: int, height: int, background: Color = BACKGROUND) -> None:
        self.width = width
        self.height = height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, x0), min(self.width, x1)
        if x1 <= x0:
            return
        run = bytes(color) * (x1 - x0)
        for y in range(max(0, y0), min(self.height, y1)):
            self.rows[y][x0 * 3 : x1 * 3] = run

    def text(self, x: int, y: int, digits: str, color: Color, scale: int) -> None:
        """Digits with their top-left corner at (x, y)."""
        for i, char in enumerate(digits):
            glyph = DIGITS.get(char)
            if glyph is None:
                continue
            left = x + i * 4 * scale
            for row, bits in enumerate(glyph):
                for col in range(3):
                    if bits & (4 >> col):
                        top = y + row * scale
                        self.rect(
                            left + col * scale, top, left + (col + 1) * scale, top + scale, color
                        )

    def png(self) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )


def text_width(digits: str, scale: int) -> int:
    return max(0, len(digits) * 4 * scale - scale)


def bar_chart(values: Sequence[tuple[str, int]], *, bar: int = 36, height: int = 360) -> bytes:
    """Bars of ``(label, value)`` pairs, left to right, tallest at full height."""
    scale = 3
    gap = bar // 3
    margin = 20
    label_h = 5 * scale + 10
    width = margin * 2 + max(1, len(values)) * (bar + gap)
    canvas = Canvas(width, height)
    base = height - margin - label_h
    top = margin + label_h
    canvas.rect(margin, base, width - margin, base + 2, AXIS)
    peak = max((v for _, v in values), default=0)
    for i, (label, value) in enumerate(values):
        x = margin + i * (bar + gap) + gap // 2
        tall = round((base - top) * value / peak) if peak else 0
        canvas.rect(x, base - tall, x + bar, base, BAR)
        canvas.text(x + (bar - text_width(label, scale)) // 2, base + 8, label, INK, scale)
        if value:
            count = str(value)
            canvas.text(
                x + (bar - text_width(count, scale)) // 2,
                base - tall - 5 * scale - 6,
                count,
                INK,
                scale,
            )
    return canvas.png()
