"""The calibration plot as a PNG, drawn without a plotting library (pure, deterministic bytes).

Bars: conversion rate per score band (blue from the suggested threshold up, grey below it);
the red line marks the suggested threshold. A 3x5 pixel font labels axes and title.
"""

from __future__ import annotations

import struct
import zlib

from ops.calibration.report import BAND_WIDTH, CalibrationReport, Rate

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
INK: RGB = (40, 40, 40)
GRID: RGB = (225, 225, 225)
BLUE: RGB = (49, 110, 180)
GREY: RGB = (175, 175, 175)
RED: RGB = (200, 40, 40)

_GLYPHS = {
    "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###", "2": "### ..# ### #.. ###",
    "3": "### ..# ### ..# ###", "4": "#.# #.# ### ..# ..#", "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###", "7": "### ..# ..# ..# ..#", "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###", "A": ".#. #.# ### #.# #.#", "B": "##. #.# ##. #.# ##.",
    "C": "### #.. #.. #.. ###", "D": "##. #.# #.# #.# ##.", "E": "### #.. ##. #.. ###",
    "F": "### #.. ##. #.. #..", "G": "### #.. #.# #.# ###", "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###", "J": "..# ..# ..# #.# ###", "K": "#.# #.# ##. #.# #.#",
    "L": "#.. #.. #.. #.. ###", "M": "#.# ### ### #.# #.#", "N": "##. #.# #.# #.# #.#",
    "O": "### #.# #.# #.# ###", "P": "### #.# ### #.. #..", "Q": "### #.# #.# ### ..#",
    "R": "##. #.# ##. #.# #.#", "S": "### #.. ### ..# ###", "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###", "V": "#.# #.# #.# #.# .#.", "W": "#.# #.# ### ### #.#",
    "X": "#.# #.# .#. #.# #.#", "Y": "#.# #.# .#. .#. .#.", "Z": "### ..# .#. #.. ###",
    " ": "... ... ... ... ...", "-": "... ... ### ... ...", ".": "... ... ... ... .#.",
    ":": "... .#. ... .#. ...", "%": "#.# ..# .#. #.. #.#", "=": "... ### ... ### ...",
    ">": "#.. .#. ..# .#. #..", "(": ".#. #.. #.. #.. .#.", ")": ".#. ..# ..# ..# .#.",
    "/": "..# ..# .#. #.. #..", ",": "... ... ... .#. #..",
}  # fmt: skip


class Canvas:
    def __init__(self, width: int, height: int, background: RGB = WHITE) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: RGB) -> None:
        """Fill [x0, x1) x [y0, y1), clipped to the canvas."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x0 >= x1:
            return
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def text(self, x: int, y: int, value: str, color: RGB = INK, scale: int = 2) -> int:
        """Draw upper-cased text with its top-left at (x, y); returns the width drawn."""
        cx = x
        for char in value.upper():
            rows = _GLYPHS.get(char, _GLYPHS[" "]).split()
            for gy, bits in enumerate(rows):
                for gx, bit in enumerate(bits):
                    if bit == "#":
                        px, py = cx + gx * scale, y + gy * scale
                        self.rect(px, py, px + scale, py + scale, color)
            cx += 4 * scale
        return cx - x

    @staticmethod
    def text_width(value: str, scale: int = 2) -> int:
        return len(value) * 4 * scale

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def _bands(report: CalibrationReport) -> list[tuple[int, Rate]]:
    """Every band from the lowest to the highest seen, empty bands included."""
    lows = [int(k.split("-")[0]) for k in report.by_band]
    if not lows:
        return []
    known = {int(k.split("-")[0]): v for k, v in report.by_band.items()}
    return [(low, known.get(low, Rate())) for low in range(min(lows), max(lows) + 1, BAND_WIDTH)]


def plot_png(report: CalibrationReport, *, width: int = 800, height: int = 480) -> bytes:
    c = Canvas(width, height)
    left, right, top, bottom = 70, 20, 70, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    c.text(left, 14, "Conversion rate by score band", scale=3)
    s = report.suggestion
    subtitle = "no conversions recorded yet"
    if s is not None:
        subtitle = (
            f"suggested threshold: score >= {s.threshold} keeps {s.conversions_kept}/"
            f"{s.conversions_now} conversions, {s.handoffs_now - s.handoffs_at_threshold} "
            "fewer handoffs"
        )
    c.text(left, 42, subtitle, color=RED if s else INK)
    bands = _bands(report)
    top_rate = max((r.conversion_rate for _, r in bands), default=0.0)
    ceiling = max(0.1, -(-round(top_rate * 100) // 10) / 10)  # next 10 % up
    steps = round(ceiling * 10)
    for i in range(steps + 1):  # grid and y labels every 10 %
        y = top + plot_h - round(plot_h * i / steps)
        c.rect(left, y, left + plot_w, y + 1, GRID)
        label = f"{i * 10}%"
        c.text(left - 8 - c.text_width(label), y - 5, label)
    c.rect(left, top, left + 1, top + plot_h + 1, INK)
    c.rect(left, top + plot_h, left + plot_w, top + plot_h + 1, INK)
    if not bands:
        return c.png()
    slot = plot_w / len(bands)
    for i, (low, rate) in enumerate(bands):
        x0 = left + round(i * slot + slot * 0.12)
        x1 = left + round((i + 1) * slot - slot * 0.12)
        bar = round(plot_h * rate.conversion_rate / ceiling)
        above = s is not None and low + BAND_WIDTH - 1 >= s.threshold
        c.rect(x0, top + plot_h - bar, x1, top + plot_h, BLUE if above else GREY)
        label = str(low)
        c.text(left + round((i + 0.5) * slot) - c.text_width(label) // 2, top + plot_h + 8, label)
    c.text(left + plot_w - c.text_width("score"), top + plot_h + 28, "score")
    if s is not None:
        first = bands[0][0]
        x = left + round((s.threshold - first) / BAND_WIDTH * slot)
        c.rect(x - 1, top, x + 2, top + plot_h, RED)
    return c.png()
