"""A real headless browser for pages omsign writes: Chromium's DOM dump and screenshots.

``chromium --headless`` (Debian package ``chromium``, installed by
``scripts/setup-system.sh``) loads the page from disk with a fresh profile. The
screenshot is decoded here (PNG, 8-bit RGB or RGBA, no interlacing) with ``zlib``
alone, so tests can count pixels of a colour without an imaging library.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from helpers.fixtures import require

__all__ = ["Element", "Png", "chromium", "dump_dom", "parse_dom", "read_png", "screenshot"]

_TIMEOUT = 120


def chromium() -> str:
    """The Chromium executable; skips without it (fails under ``CI=true``)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    require(exe is not None, "chromium is not installed (scripts/setup-system.sh installs it)")
    assert exe is not None
    return exe


def _run(page: Path, *flags: str) -> subprocess.CompletedProcess[bytes]:
    with tempfile.TemporaryDirectory(prefix="omsign-chromium-") as profile:
        proc = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--force-color-profile=srgb",
                f"--user-data-dir={profile}",
                *flags,
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    if proc.returncode != 0:
        raise AssertionError(f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]!r}")
    return proc


def dump_dom(page: Path) -> str:
    """The DOM Chromium built from the page, serialised (``--dump-dom``)."""
    return _run(page, "--dump-dom").stdout.decode("utf-8")


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 1000) -> Path:
    """A PNG screenshot of the page at the given window size."""
    _run(page, f"--screenshot={out}", f"--window-size={width},{height}")
    if not out.is_file():
        raise AssertionError(f"chromium wrote no screenshot at {out}")
    return out


@dataclass(frozen=True)
class Element:
    """One element of a parsed DOM: its tag, attributes and direct text."""

    tag: str
    attrs: dict[str, str]
    text: str

    @property
    def classes(self) -> set[str]:
        """The element's classes."""
        return set(self.attrs.get("class", "").split())


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {k: v or "" for k, v in attrs}, ""))
        self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self.elements[self._open.pop()].tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            i = self._open[-1]
            e = self.elements[i]
            self.elements[i] = Element(e.tag, e.attrs, e.text + data)


def parse_dom(text: str) -> list[Element]:
    """Every element of an HTML document, in document order."""
    collector = _Collector()
    collector.feed(text)
    collector.close()
    return collector.elements


@dataclass(frozen=True)
class Png:
    """A decoded image: its size and RGB bytes, row by row."""

    width: int
    height: int
    rgb: bytes

    def colours(self) -> Counter[tuple[int, int, int]]:
        """How many pixels have each exact colour."""
        counts = Counter(self.rgb[i : i + 3] for i in range(0, len(self.rgb), 3))
        return Counter({(c[0], c[1], c[2]): n for c, n in counts.items()})


def _add(a: bytes | bytearray, b: bytes | bytearray, low: int, high: int) -> bytearray:
    """Byte-wise ``(a + b) mod 256`` on whole rows at once (no carry between bytes)."""
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    total = ((x & low) + (y & low)) ^ ((x ^ y) & high)
    return bytearray(total.to_bytes(len(a), "big"))


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> bytearray:
    """Undoes one row's PNG filter (PNG specification, section 9)."""
    n = len(line)
    if kind == 0:
        return line
    if kind == 2:
        return _add(
            line, previous, int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
        )
    for i in range(n):
        left = line[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        else:
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + pred) & 0xFF
    return line


def read_png(path: Path) -> Png:
    """Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path}: not a PNG file")
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise AssertionError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    previous = bytearray(stride)
    rgb = bytearray()
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        previous = _unfilter(raw[start], line, previous, bpp)
        if bpp == 3:
            rgb += previous
        else:
            row = bytearray(width * 3)
            for c in range(3):
                row[c::3] = previous[c::4]
            rgb += row
    return Png(width, height, bytes(rgb))
