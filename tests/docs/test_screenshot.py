"""The HTML report renders in a real browser: headless Chromium turns it into a sensible PNG.

scripts/screenshot_report.py takes the screenshot; a small PNG decoder (zlib only) checks that
the image has the requested size, is not blank, and shows the status colours of the rule matrix.
"""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "screenshot_report.py"
WIDTH, HEIGHT = 1280, 1400
#: The matrix's status colours (report_html.STYLE): passed, failed.
GREEN, RED = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshot_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- a minimal PNG decoder: 8-bit greyscale, RGB, grey+alpha and RGBA, not interlaced ------------
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
    return (left, up, up_left)[distances.index(min(distances))]


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """Width, height, channels per pixel, and the unfiltered rows of a PNG image."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    position, idat, header = 8, bytearray(), b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in CHANNELS and interlace == 0, (depth, colour, interlace)
    channels = CHANNELS[colour]
    stride = width * channels
    raw = zlib.decompress(bytes(idat))
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            up_left = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[x] = (line[x] + _paeth(left, up, up_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, channels, rows


def colours(channels: int, rows: list[bytes]) -> Counter[tuple[int, ...]]:
    """How many pixels of each colour (RGB; alpha dropped)."""
    counted: Counter[tuple[int, ...]] = Counter()
    for row in rows:
        for x in range(0, len(row), channels):
            pixel = tuple(row[x : x + channels])
            counted[pixel[:3] if channels >= 3 else pixel[:1] * 3] += 1
    return counted


def _near(colour: tuple[int, ...], wanted: tuple[int, int, int], tolerance: int = 4) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, wanted, strict=True))


def test_png_decoder_reads_a_known_image() -> None:
    # A 2x2 RGB image: red, green / blue, white; rows filtered with None and Sub.
    rows = [b"\x00" + bytes([255, 0, 0, 0, 255, 0]), b"\x01" + bytes([0, 0, 255, 255, 255, 0])]
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
    width, height, channels, decoded = decode_png(png)
    assert (width, height, channels) == (2, 2, 3)
    assert decoded == [bytes([255, 0, 0, 0, 255, 0]), bytes([0, 0, 255, 255, 255, 255])]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real report with passed, failed and not-run rules (a store that leaks KeyError)."""
    base = tmp_path_factory.mktemp("report") / "conformance"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--asm-store=tests.zoo.sessions:RawKeyError",
            "--asm-rules=PORT-1,SES-2",
            "--asm-profile=quick",
            f"--asm-report={base}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    html = base.with_suffix(".html")
    assert html.is_file(), "the run wrote no HTML report"
    return html


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    if _script().find_chromium() is None:
        pytest.skip(
            "needs Chromium: install the Debian package chromium (apt-get install chromium)"
        )
    png = tmp_path / "report.png"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(report),
            str(png),
            f"--width={WIDTH}",
            f"--height={HEIGHT}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert png.stat().st_size > 0

    width, height, channels, rows = decode_png(png.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    counted = colours(channels, rows)
    total = width * height
    background, most = counted.most_common(1)[0]
    assert most < total * 0.98, f"the page is almost all {background}: nothing rendered"
    assert len(counted) >= 20, f"only {len(counted)} colours: no text or styling rendered"
    greens = sum(n for colour, n in counted.items() if _near(colour, GREEN))
    reds = sum(n for colour, n in counted.items() if _near(colour, RED))
    assert greens > 200, "no passed cell (green) in the rule matrix"
    assert reds > 200, "no failed cell (red) in the rule matrix"


def test_the_script_says_when_chromium_is_missing(report: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(report),
            str(tmp_path / "x.png"),
            "--chromium=/nonexistent/chromium",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/nonexistent"},
    )
    assert done.returncode == 2
    assert "install the chromium package" in done.stderr
