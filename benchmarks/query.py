"""Keyset pages on indexes: the SQL QueryAPI on a large store, as ratios within one run.

Usage: python benchmarks/query.py [--events 1000000] [--sessions 10000] [--repeat 15]
                                  [--backends sqlite,postgresql,mariadb]

For each backend, a fresh store (SQLite: the embedded default; servers: an isolated namespace,
dropped afterwards) is filled with ``--events`` events spread evenly over ``--sessions`` sessions,
one run per session, by bulk INSERTs of the rows the store itself writes (``codec``), then
``ANALYZE``d. Every figure is the median of ``--repeat`` calls (milliseconds); the ratios are
what query-maintenance.md section 6 sets targets for (<= 1.5):

* ``search_events`` (limit 100) page 1,000 against page 1, in ``sequence_asc`` and
  ``timestamp_desc`` order (the cursor of page 1,000 is reached by following 999 cursors);
* ``count_events`` of one session against ``get_latest_sequence`` of it;
* ``search_sessions`` with filters (agent and status; a tag; a provider) against the unfiltered
  first page, and page 100 (or the last, on small stores) against page 1 of the filtered search
  (limit 5).

Servers default to the development services (``ASM_TEST_POSTGRES_URL``, ``ASM_TEST_MYSQL_URL``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from pytest_asm_contract import Event, EventType, Run, RunStatus, Session, SessionStatus  # noqa: E402
from reference_stores.sql import (  # noqa: E402
    SqlQueryAPI,
    SqlSessionStore,
    codec,
)
from reference_stores.sql.schema import tables_for  # noqa: E402

SERVERS = {
    "postgresql": os.environ.get(
        "ASM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get("ASM_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
TYPES = (EventType.MESSAGE_SENT, EventType.MESSAGE_RECEIVED, EventType.TOOL_CALL_STARTED)
PROVIDERS = ("anthropic", "openai", "gemini")
START = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK = 5_000


def open_store(backend: str) -> SqlSessionStore:
    if backend == "sqlite":
        return SqlSessionStore()
    return SqlSessionStore(SERVERS[backend], isolated=True)


def rows(events: int, sessions: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(table, rows) chunks: the sessions, their runs and counters, then the events."""
    per_session = events // sessions
    session_rows, run_rows, counters = [], [], []
    for n in range(sessions):
        created = START + timedelta(seconds=n)
        session = Session(
            id=f"s{n:06d}",
            agent_id=f"agent-{n % 10}",
            status=SessionStatus.ACTIVE if n % 3 else SessionStatus.COMPLETED,
            tags=["bench", f"t{n % 7}"],
            created_at=created,
            updated_at=created + timedelta(hours=n % 97),
        )
        run = Run(
            id=f"r{n:06d}",
            session_id=session.id,
            status=RunStatus.COMPLETED,
            provider=PROVIDERS[n % 3],
            token_usage={"input_tokens": n % 1000, "output_tokens": n % 300},
            started_at=created,
        )
        session_rows.append(codec.session_row(session))
        run_rows.append(codec.run_row(run))
        counters.append({"session_id": session.id, "last_sequence": per_session})
    yield "sessions", session_rows
    yield "runs", run_rows
    yield "sequences", counters
    chunk: list[dict[str, Any]] = []
    for n in range(sessions):
        for sequence in range(1, per_session + 1):
            event = Event(
                id=f"e{n:06d}-{sequence:05d}",
                type=TYPES[sequence % 3],
                session_id=f"s{n:06d}",
                run_id=f"r{n:06d}",
                timestamp=START + timedelta(seconds=n, milliseconds=sequence),
                data={"text": "x" * 40},
                provider=PROVIDERS[n % 3],
            )
            chunk.append(codec.event_row(event, sequence))
            if len(chunk) == CHUNK:
                yield "events", chunk
                chunk = []
    if chunk:
        yield "events", chunk


def fill(store: SqlSessionStore, events: int, sessions: int) -> float:
    return load(store, rows(events, sessions))


def load(
    store: SqlSessionStore,
    chunks: Iterable[tuple[str, list[dict[str, Any]]]],
    analyzed: tuple[str, ...] = ("sessions", "runs", "events"),
) -> float:
    """Bulk INSERTs of (table, rows) chunks, one transaction each, then ANALYZE; seconds."""
    tables = tables_for(store.table_prefix)
    started = time.perf_counter()
    with store.engine.connect() as connection:
        for table, chunk in chunks:
            with connection.begin():
                connection.execute(getattr(tables, table).insert(), chunk)
        dialect = store.engine.dialect.name
        with connection.begin():
            for table in analyzed:
                name = tables.names()[table]
                statement = f"ANALYZE TABLE {name}" if dialect in ("mysql", "mariadb") else None
                connection.exec_driver_sql(statement or f"ANALYZE {name}")
    return time.perf_counter() - started


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm: compiled statement, pool, page cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def cursor_of_page(fetch: Callable[[str | None], Any], page: int) -> str:
    cursor = None
    for _ in range(page - 1):
        cursor = fetch(cursor).cursor
        assert cursor is not None, f"fewer than {page} pages"
    return cursor  # type: ignore[return-value]


def measure(
    backend: str, events: int, sessions: int, repeat: int, far_page: int
) -> list[tuple[str, float]]:
    store = open_store(backend)
    figures: list[tuple[str, float]] = []
    try:
        figures.append(("fill (s)", fill(store, events, sessions)))
        queries = SqlQueryAPI(store)
        for order in ("sequence_asc", "timestamp_desc"):

            def page(cursor: str | None, order: str = order) -> Any:
                return queries.search_events(order_by=order, limit=100, cursor=cursor)

            far = cursor_of_page(page, far_page)
            first_ms = median_ms(lambda page=page: page(None), repeat)
            far_ms = median_ms(lambda page=page, far=far: page(far), repeat)
            figures += [
                (f"search_events {order} page 1 (ms)", first_ms),
                (f"search_events {order} page {far_page} (ms)", far_ms),
                (f"  ratio page {far_page} / page 1 ({order})", far_ms / first_ms),
            ]
        middle = f"s{sessions // 2:06d}"
        count_ms = median_ms(lambda: queries.count_events(session_ids=[middle]), repeat)
        latest_ms = median_ms(lambda: store.get_latest_sequence(middle), repeat)
        figures += [
            ("count_events one session (ms)", count_ms),
            ("get_latest_sequence (ms)", latest_ms),
            ("  ratio count_events / get_latest_sequence", count_ms / latest_ms),
        ]
        plain_ms = median_ms(lambda: queries.search_sessions(limit=50), repeat)
        figures.append(("search_sessions page 1 (ms)", plain_ms))
        for label, filters in (
            ("agent+status", {"agent_id": "agent-3", "status": "active"}),
            ("tag", {"tags": ["t3"]}),
            ("provider", {"provider": "openai"}),
        ):

            def search(cursor: str | None, filters: dict[str, Any] = filters) -> Any:
                return queries.search_sessions(limit=5, cursor=cursor, **filters)

            pages = min(100, search(None).total_count // 5)
            far = cursor_of_page(search, pages)
            first_ms = median_ms(lambda search=search: search(None), repeat)
            far_ms = median_ms(lambda search=search, far=far: search(far), repeat)
            figures += [
                (f"search_sessions {label} page 1 (ms)", first_ms),
                (f"  ratio {label} / unfiltered page 1", first_ms / plain_ms),
                (f"  ratio {label} page {pages} / page 1", far_ms / first_ms),
            ]
    finally:
        store.close()
    return figures


def reachable(backend: str) -> bool:
    if backend == "sqlite":
        return True
    engine = sa.create_engine(SERVERS[backend], poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            return True
    except Exception as error:  # the benchmark goes on without that server
        print(f"{backend}: unreachable ({type(error).__name__}); left out", file=sys.stderr)
        return False
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backends", default="sqlite,postgresql,mariadb")
    parser.add_argument("--far-page", type=int, default=1000, help="the page set against page 1")
    args = parser.parse_args()
    if args.events // args.sessions < 1 or args.events // 100 < args.far_page:
        parser.error("--events must fill --far-page pages of 100, with an event per session")
    backends = [b for b in args.backends.split(",") if b and reachable(b)]
    print(f"{args.events:,} events in {args.sessions:,} sessions; median of {args.repeat} calls")
    results = {
        backend: measure(backend, args.events, args.sessions, args.repeat, args.far_page)
        for backend in backends
    }
    labels = [label for label, _ in results[backends[0]]] if backends else []
    print(f"{'figure':50}" + "".join(f"{b:>12}" for b in backends))
    for index, label in enumerate(labels):
        values = [results[b][index][1] for b in backends]
        print(f"{label:50}" + "".join(f"{v:>12.2f}" for v in values))
    print(f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
