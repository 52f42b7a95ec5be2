"""conformance.html in a real browser: headless Chromium loads it, and the verdict shows at the top.

Skipped, saying why, where Chromium is not installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from sts_conformance.reporting import render_html

from .support import recorded_doc

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no Chromium on this machine (Debian: apt-get install chromium); the HTML is not browsed"
)
WIDTH, HEIGHT = 1280, 900


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    with tempfile.TemporaryDirectory() as profile_dir:
        return subprocess.run(
            [
                BROWSER,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile_dir}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


def page_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.html"
    path.write_text(render_html(recorded_doc(name)), encoding="utf-8")
    return path


def png_pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    """The RGB colour at (x, y) of an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, _, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, "an unexpected PNG layout"
    bpp = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    for row in range(y + 1):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
    r, g, b = prev[x * bpp : x * bpp + 3]
    return r, g, b


@pytest.mark.parametrize(
    ("name", "tint"),
    [("serial-pass", "green"), ("xdist-fault", "red")],
    ids=["pass-page", "fail-page"],
)
def test_verdict_banner_shows_at_the_top(tmp_path, name, tint):
    """The screenshot's top is the verdict banner, green for a pass and red for a failure."""
    shot = tmp_path / f"{name}.png"
    done = chromium(f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", page_file(tmp_path, name).as_uri())
    assert shot.exists(), done.stderr[-2000:]
    png = shot.read_bytes()
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)
    r, g, b = png_pixel(png, WIDTH - 50, 8)  # the banner's top right corner: background, no text
    if tint == "green":
        assert g > r and g > b, f"banner is {(r, g, b)}, expected a green tint"
    else:
        assert r > g and r > b, f"banner is {(r, g, b)}, expected a red tint"


def test_browser_builds_the_whole_page(tmp_path):
    """Chromium parses the page into the verdict, the failure blocks and the full matrix."""
    doc = recorded_doc("xdist-fault")
    done = chromium("--dump-dom", page_file(tmp_path, "xdist-fault").as_uri())
    dom = done.stdout
    assert '<div class="word">FAIL</div>' in dom, done.stderr[-2000:]
    assert dom.count('<tr id="m-ST-') == len(doc["requirements"])
    assert 'id="req-ST-AUTH-004"' in dom and 'id="req-ST-LIFE-004"' in dom
    assert "</html>" in dom
