"""Merge conformance reports into one table of stores x rules.

Usage: asm-contract-compare REPORT.json [REPORT.json ...] [--markdown OUT.md] [--html OUT.html]
(without an output option the Markdown table goes to standard output).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pytest_asm_contract._plugin.report_html import (
    render_comparison_html,
    render_comparison_markdown,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="asm-contract-compare", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "reports", nargs="+", type=Path, help="JSON reports written by --asm-report"
    )
    parser.add_argument("--markdown", type=Path, help="write the Markdown table here")
    parser.add_argument("--html", type=Path, help="write the HTML table here")
    args = parser.parse_args(argv)
    reports = [json.loads(path.read_text()) for path in args.reports]
    markdown = render_comparison_markdown(reports)
    if args.markdown:
        args.markdown.write_text(markdown)
    if args.html:
        args.html.write_text(render_comparison_html(reports))
    if not (args.markdown or args.html):
        print(markdown, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
