"""The benchmarks still run and report sane figures (tiny runs on SQLite; no timing is
judged here: the figures belong to benchmarks/, on an idle machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/SCRIPT ARGS...``, its output captured; it must exit 0."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_sql_throughput_runs_end_to_end_on_sqlite() -> None:
    tiny = ["--batches", "2", "--batch-size", "5", "--repeat", "1"]
    tiny += ["--threads", "2", "--per-thread", "3", "--postgres-url", "", "--mysql-url", ""]
    result = _benchmark("sql_throughput.py", *tiny)
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("sqlite")]
    batch, split, replay, threads, reads = rows
    assert len(batch) == 8 or batch[4:] == ["n/a"]  # eventsourcing is optional
    store, in_driver, own_work = (float(value) for value in split[1:4])
    assert 0 < in_driver < store
    assert abs(store - in_driver - own_work) <= 0.11  # printed with one decimal each
    assert len(split) == 7  # eventsourcing columns print n/a when it is not installed
    assert float(replay[1].replace(",", "")) > 0
    assert threads[2:] == ["0", "0"]  # no gaps, no repeats
    assert len(reads) == 4


def test_query_benchmark_runs_end_to_end_on_sqlite() -> None:
    tiny = ["--events", "2000", "--sessions", "40", "--repeat", "1", "--far-page", "5"]
    result = _benchmark("query.py", *tiny, "--backends", "sqlite")
    ratios = [line for line in result.stdout.splitlines() if line.strip().startswith("ratio")]
    assert len(ratios) == 9, result.stdout
    assert all(float(line.split()[-1]) > 0 for line in ratios)


def test_maintenance_benchmark_runs_end_to_end_on_sqlite() -> None:
    tiny = ["--events", "2000", "--sessions", "20", "--appends", "200", "--backends", "sqlite"]
    result = _benchmark("maintenance.py", *tiny)
    figures: dict[str, list[float]] = {}
    for line in result.stdout.splitlines()[2:-1]:
        label, value = line.rsplit(maxsplit=1)
        figures.setdefault(label.strip(), []).append(float(value.replace(",", "")))
    assert figures["report as expected"] == [1, 1], result.stdout  # alone, and beside writers
    assert figures["events_pruned"] == [190, 190]  # 19 sessions left, 10 events over each
    assert figures["execute (s)"][0] > 0
    for label in ("appends alone (events/s)", "appends during execute (events/s)"):
        assert figures[label][0] > 0, result.stdout
    assert figures["ratio during / alone"][0] > 0


def test_verdicts_runs_a_broken_store_and_reads_its_first_failure() -> None:
    # One artifact store of the zoo, one seed: caught, its rule named first, a short red run.
    wanted = ["--seeds", "1", "--skip-correct", "--stores", "artifacts:CaseInsensitiveKeys"]
    result = _benchmark("verdicts.py", *wanted)
    assert "seed=1 caught=True first_names_rule=True" in result.stderr, result.stderr
    row = next(line for line in result.stdout.splitlines() if "CaseInsensitiveKeys" in line)
    assert row.split()[2:4] == ["1/1", "1/1"], row
    assert "broken stores caught in every seed: 1 of 1" in result.stdout


def test_verdicts_tabulates_split_runs_from_their_logs(tmp_path: Path) -> None:
    # A long run split by seeds, then one table from both runs' per-run lines.
    logs = []
    for first in ("1", "2"):
        wanted = ["--seeds", "1", "--first-seed", first, "--skip-correct"]
        result = _benchmark("verdicts.py", *wanted, "--stores", "artifacts:CaseInsensitiveKeys")
        assert f"seed={first} caught=True" in result.stderr, result.stderr
        logs.append(tmp_path / f"seed{first}.log")
        logs[-1].write_text(result.stderr)
    table = _benchmark(
        "verdicts.py", "--from-log", *map(str, logs), "--skip-correct", "--by-module"
    ).stdout
    row = next(line for line in table.splitlines() if "CaseInsensitiveKeys" in line)
    assert row.split()[2:4] == ["2/2", "2/2"], table
    assert "seeds: 1, 2" in table
    assert "broken stores with no run recorded: " in table  # the rest of the zoo
    assert "broken stores caught in every seed: 1 of 1" in table
    assert "| `artifacts` | 1 | 1 | 1 |" in table  # the per-module table of docs/verdicts.md
