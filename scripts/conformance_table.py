"""Run the contract suite on the reference stores and publish their verdicts side by side.

    python scripts/conformance_table.py            # print the Markdown table
    python scripts/conformance_table.py --write    # replace the table in docs/conformance.md
    python scripts/conformance_table.py --check    # exit 1 if docs/conformance.md is out of date

Each store runs the bundled suite in its own pytest process with ``--asm-report``; the reports
are merged with ``asm-contract-compare`` (``pytest_asm_contract._plugin.compare``). Stores:

- ``memory``: ``reference_stores.memory:InMemorySessionStore`` with its QueryAPI, artifact
  registry and Maintenance (``InMemoryQueryAPI``, ``InMemoryArtifactRegistry``,
  ``InMemoryMaintenance``);
- ``sql``: ``reference_stores.sql:SqlSessionStore`` with no options (SQLite), its QueryAPI,
  artifact registry and Maintenance (``SqlQueryAPI``, ``SqlArtifactRegistry``,
  ``SqlMaintenance``);
- ``async-sql``: ``reference_stores.sql:AsyncSqlSessionStore`` with no options (aiosqlite);
- ``s3``: ``reference_stores.s3:S3SessionStore`` on a local moto server (needs the ``s3`` and
  ``test`` extras; left out, with a note, when they are not installed);
- ``example``: ``examples/sqlite3-adapter``, the example third-party adapter.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "conformance.md"
START = "<!-- conformance-table:start -->"
END = "<!-- conformance-table:end -->"
BUCKET = "asm-conformance"


@dataclasses.dataclass(frozen=True)
class Store:
    key: str
    label: str  # the column heading: stable, unlike options such as a server's port
    args: tuple[str, ...]
    cwd: Path = ROOT


STORES = {
    "memory": Store(
        "memory",
        "reference_stores.memory:InMemorySessionStore + query, registry, maintenance",
        (
            "--asm-store=reference_stores.memory:InMemorySessionStore",
            "--asm-query=reference_stores.memory:InMemoryQueryAPI",
            "--asm-artifact-registry=reference_stores.memory:InMemoryArtifactRegistry",
            "--asm-maintenance=reference_stores.memory:InMemoryMaintenance",
        ),
    ),
    "sql": Store(
        "sql",
        "reference_stores.sql:SqlSessionStore + query, registry, maintenance (SQLite)",
        (
            "--asm-store=reference_stores.sql:SqlSessionStore",
            "--asm-query=reference_stores.sql:SqlQueryAPI",
            "--asm-artifact-registry=reference_stores.sql:SqlArtifactRegistry",
            "--asm-maintenance=reference_stores.sql:SqlMaintenance",
            "-n",
            "2",
        ),
    ),
    "async-sql": Store(
        "async-sql",
        "reference_stores.sql:AsyncSqlSessionStore (SQLite, aiosqlite)",
        ("--asm-store=reference_stores.sql:AsyncSqlSessionStore", "-n", "2"),
    ),
    "s3": Store(
        "s3",
        "reference_stores.s3:S3SessionStore (moto)",
        ("--asm-store=reference_stores.s3:S3SessionStore", "-n", "2"),
    ),
    "example": Store(
        "example",
        "examples/sqlite3-adapter",
        (),
        ROOT / "examples" / "sqlite3-adapter",
    ),
}


def _have(*modules: str) -> bool:
    try:
        return all(importlib.util.find_spec(name) is not None for name in modules)
    except ModuleNotFoundError:
        return False


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """A local, serialized moto S3 server with the bucket the S3 store uses."""
    import boto3

    from reference_stores.s3.moto_server import serialized_moto_server

    server = serialized_moto_server(port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        yield endpoint
    finally:
        server.stop()


def run_suite(store: Store, report: Path, extra: tuple[str, ...] = ()) -> dict[str, object]:
    """Run the suite for one store; its JSON report, relabelled with the store's column name."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *store.args,
        *extra,
        f"--asm-report={report}",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    print(f"conformance_table: {store.key}: {' '.join(command[1:])}", file=sys.stderr)
    done = subprocess.run(command, cwd=store.cwd, capture_output=True, text=True, check=False)
    path = report.with_suffix(".json")
    if not path.is_file():
        raise SystemExit(
            f"conformance_table: {store.key} wrote no report (exit {done.returncode}):\n"
            + done.stdout[-3000:]
            + done.stderr[-3000:]
        )
    data: dict[str, object] = json.loads(path.read_text())
    data["store"] = store.label
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data


def build_table(keys: list[str], reports_dir: Path, html: Path | None) -> str:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    paths = []
    for key in keys:
        store = STORES[key]
        report = reports_dir / key
        if key == "s3":
            if not _have("boto3", "moto.server", "reference_stores.s3"):
                print(
                    "conformance_table: s3 left out: needs boto3 and moto[server] "
                    "(pip install -e '.[s3,test]')",
                    file=sys.stderr,
                )
                continue
            with moto_endpoint() as endpoint:
                options = (
                    f"--asm-store-option=endpoint_url={endpoint}",
                    f"--asm-store-option=bucket={BUCKET}",
                )
                run_suite(store, report, options)
        else:
            run_suite(store, report)
        paths.append(str(report.with_suffix(".json")))
    command = [sys.executable, "-m", "pytest_asm_contract._plugin.compare", *paths]
    if html is not None:
        command += ["--html", str(html)]
    merged = subprocess.run(command, capture_output=True, text=True, check=True)
    return merged.stdout


def replace_table(document: str, table: str) -> str:
    before, start, rest = document.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"conformance_table: {DOC} lacks the markers {START} and {END}")
    return f"{before}{START}\n{table}{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"update {DOC.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 if the published table differs")
    parser.add_argument(
        "--stores",
        default=",".join(STORES),
        help=f"comma-separated, from {', '.join(STORES)} (default: all)",
    )
    parser.add_argument("--reports-dir", type=Path, help="keep the JSON reports here")
    parser.add_argument("--html", type=Path, help="also write the comparison as HTML")
    args = parser.parse_args(argv)
    keys = [key.strip() for key in args.stores.split(",") if key.strip()]
    unknown = [key for key in keys if key not in STORES]
    if unknown:
        parser.error(f"unknown store {', '.join(unknown)}; choose from {', '.join(STORES)}")

    with tempfile.TemporaryDirectory(prefix="asm-conformance-") as scratch:
        reports_dir = (args.reports_dir or Path(scratch)).resolve()
        reports_dir.mkdir(parents=True, exist_ok=True)
        table = build_table(keys, reports_dir, args.html)

    if not (args.write or args.check):
        print(table, end="")
        return 0
    current = DOC.read_text()
    updated = replace_table(current, table)
    if args.check:
        if updated != current:
            print(
                f"{DOC.relative_to(ROOT)} is out of date; run: python scripts/conformance_table.py "
                "--write",
                file=sys.stderr,
            )
            return 1
        print(f"{DOC.relative_to(ROOT)} is up to date", file=sys.stderr)
        return 0
    DOC.write_text(updated)
    print(f"wrote {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
