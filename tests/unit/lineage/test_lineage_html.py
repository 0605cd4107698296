"""The lineage page in a real headless Chromium: what the DOM holds, what the screen shows."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest

from helpers.browser import Element, dump_dom, parse_dom, read_png, screenshot
from helpers.lineage_values import DIGESTS, sample_lineage
from omsign._lineage import STATUS_COLOURS, render_lineage_html, write_lineage_html

HOSTILE = '<script>alert("x")</script><img src=http://example.com/x.png>\x1b[2J"\u202e'


def _rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "lineage.html"
    assert write_lineage_html(sample_lineage(base_name=HOSTILE), out) == out
    return out


def test_the_page_written_is_the_rendering_and_nothing_is_left_beside_it(page: Path) -> None:
    assert page.read_text(encoding="utf-8") == render_lineage_html(
        sample_lineage(base_name=HOSTILE)
    )
    assert sorted(p.name for p in page.parent.iterdir()) == ["lineage.html"]


@pytest.fixture(scope="module")
def dom(page: Path) -> list[Element]:
    """The page as Chromium built it."""
    return parse_dom(dump_dom(page))


def test_the_browser_shows_every_node_with_its_status(dom: list[Element]) -> None:
    elements = dom
    nodes = {e.attrs["data-digest"]: e for e in elements if "node" in e.classes}
    assert {d: e.attrs["data-status"] for d, e in nodes.items()} == {
        f"sha256:{DIGESTS['quant']}": "verified",
        f"sha256:{DIGESTS['tuned']}": "verified",
        f"sha256:{DIGESTS['base']}": "unverified",
        f"sha256:{DIGESTS['data1']}": "verified",
        f"sha256:{DIGESTS['data0']}": "not-found",
    }
    assert nodes[f"sha256:{DIGESTS['data0']}"].attrs["data-kind"] == "dataset"
    rows = {e.attrs["data-digest"]: e.attrs["data-status"] for e in elements if "row" in e.classes}
    assert rows == {d: e.attrs["data-status"] for d, e in nodes.items()}
    links = {(e.attrs["data-from"], e.attrs["data-to"]) for e in elements if "link" in e.classes}
    assert (f"sha256:{DIGESTS['data0']}", f"sha256:{DIGESTS['base']}") in links
    assert len(links) == 4
    legend = {e.attrs["data-status"]: e.text for e in elements if e.tag == "li"}
    assert legend == {
        "verified": "verified (3)",
        "unverified": "unverified (1)",
        "not-found": "not found (1)",
    }
    texts = " ".join(e.text for e in elements)
    for step in ("step: quantize", "step: fine-tune", "signer: key sha256:b"):
        assert step in texts


def test_hostile_names_stay_text_and_the_page_loads_nothing(page: Path, dom: list[Element]) -> None:
    elements = dom
    assert [e.tag for e in elements if e.tag in ("script", "img", "iframe", "link", "object")] == []
    for e in elements:
        for name, value in e.attrs.items():
            assert not name.startswith("on"), (e.tag, name)
            if name in ("src", "href"):
                pytest.fail(f"{e.tag} loads {value}")
    csp = [
        e.attrs["content"]
        for e in elements
        if e.attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert len(csp) == 1 and "default-src 'none'" in csp[0] and "script-src 'none'" in csp[0]
    row = next(
        e
        for e in elements
        if e.tag == "tr" and e.attrs.get("data-digest") == f"sha256:{DIGESTS['base']}"
    )
    cells = [e.text for e in elements if e.tag == "td"]
    assert (
        '<script>alert("x")</script><img src=http://example.com/x.png>\\u001b[2J"\\u202e' in cells
    )
    assert "\x1b" not in page.read_text() and "\u202e" not in page.read_text()
    assert row.attrs["data-status"] == "unverified"


def test_the_screenshot_shows_each_status_colour_in_proportion(page: Path, tmp_path: Path) -> None:
    image = read_png(screenshot(page, tmp_path / "shot.png", 1300, 700))
    assert (image.width, image.height) == (1300, 700)
    colours = image.colours()
    assert colours.most_common(1)[0][0] == (255, 255, 255)  # the page's background
    assert len(colours) > 50  # text, boxes and arrows: not a blank page
    count = {s: colours[_rgb(c)] for s, c in STATUS_COLOURS.items()}
    # Each box draws its status colour over the same area (stripe and border); three
    # boxes are verified, one unverified, one not found. The legend and table add a little.
    assert count["unverified"] > 3000 and count["not-found"] > 3000
    assert 2.4 < count["verified"] / count["unverified"] < 3.6, count
    assert 0.75 < count["not-found"] / count["unverified"] < 1.33, count


def test_the_page_is_self_contained_markup() -> None:
    text = render_lineage_html(sample_lineage())
    assert not re.search(r"\b(src|href)\s*=", text)
    assert "<script" not in text and "url(" not in text and "@import" not in text


def _png(rows: list[bytes], width: int, filters: list[int], bpp: int) -> bytes:
    """A PNG whose rows are stored with the given filter types (PNG section 9)."""
    out, previous = bytearray(), bytes(len(rows[0]))
    for row, kind in zip(rows, filters, strict=True):
        coded = bytearray()
        for i, value in enumerate(row):
            left = row[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            p = left + up - corner
            paeth = min(
                (abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - corner), 2, corner)
            )[2]
            pred = (0, left, up, (left + up) >> 1, paeth)[kind]
            coded.append((value - pred) & 0xFF)
        out += bytes([kind]) + coded
        previous = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    colour = 2 if bpp == 3 else 6
    header = struct.pack(">IIBBBBB", width, len(rows), 8, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(out)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("bpp", [3, 4])
def test_the_png_decoder_undoes_every_filter(tmp_path: Path, bpp: int) -> None:
    width = 9
    rows = [
        bytes((x * 37 + y * 101 + c * 53) % 256 for x in range(width) for c in range(bpp))
        for y in range(5)
    ]
    path = tmp_path / "t.png"
    path.write_bytes(_png(rows, width, [0, 1, 2, 3, 4], bpp))
    image = read_png(path)
    assert (image.width, image.height) == (width, 5)
    expected = b"".join(bytes(b for i, b in enumerate(row) if i % bpp < 3) for row in rows)
    assert image.rgb == expected
