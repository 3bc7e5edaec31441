"""Render a conformance report's HTML (``--asm-report=PATH`` writes PATH.html) to a PNG.

    python scripts/screenshot_report.py reports/conformance.html reports/conformance.png
    python scripts/screenshot_report.py REPORT.html OUT.png --width 1280 --height 2400

Uses headless Chromium (Debian: ``apt-get install chromium``; another binary with
``--chromium PATH`` or ``$CHROMIUM``). The screenshot covers the window, so pass a height that
fits the report. Exit status 2 when Chromium is not installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium binary to use: ``explicit``, ``$CHROMIUM``, or the first one on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), *CANDIDATES):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def screenshot(
    html: Path, png: Path, *, width: int = 1280, height: int = 1600, chromium: str | None = None
) -> Path:
    """Render ``html`` into ``png`` at ``width`` x ``height`` pixels; returns ``png``."""
    binary = find_chromium(chromium)
    if binary is None:
        raise FileNotFoundError(
            "no Chromium found (looked for $CHROMIUM and " + ", ".join(CANDIDATES) + "); "
            "install the chromium package"
        )
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="asm-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(
            f"chromium exited with {done.returncode} and wrote no screenshot:\n"
            + done.stderr[-3000:]
        )
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report's HTML file")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--chromium", help="the Chromium binary (default: $CHROMIUM or PATH)")
    args = parser.parse_args(argv)
    if not args.html.is_file():
        parser.error(f"no such file: {args.html}")
    try:
        written = screenshot(
            args.html, args.png, width=args.width, height=args.height, chromium=args.chromium
        )
    except FileNotFoundError as error:
        print(f"screenshot_report: {error}", file=sys.stderr)
        return 2
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
