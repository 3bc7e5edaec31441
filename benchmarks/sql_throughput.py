"""Throughput of the SQL reference store, next to the raw driver and to eventsourcing.

One run on one machine, figures printed side by side:

1. batch appends: ``append_events`` with batches of 100 events (one session) on SQLite and
   PostgreSQL (and MariaDB when reachable), against the raw driver's ``executemany`` of the same
   rows into the same table (pre-serialised rows, one transaction per batch: the floor the store
   cannot beat), and against eventsourcing's application recorders (``insert_events`` of the
   same number of stored events of one aggregate, same payload bytes), and eventsourcing as its
   applications use it ("es mapped": domain events encoded by its mapper and JSON transcoder,
   then the same ``insert_events``; the store's figure includes its encoding too). The
   contenders take turns: each round times each of them once, so all of them share the
   machine's slow spells;
2. the same batches appended a second time (every id already stored: the store finds them and
   writes nothing), the store alone;
3. 8 threads of single ``append_event_with_sequence`` calls to one session, on PostgreSQL (and
   the other backends for reference), checking that the numbers are exactly 1..n;
4. the latency of three reads (one thread, a session of 100 events).

Run it from the repository root:

    .venv/bin/python benchmarks/sql_throughput.py

The eventsourcing column needs the library, which is not a dependency of this project; install
it in the same environment for the benchmark only:

    .venv/bin/pip install "eventsourcing[postgres]"

Servers default to the development services; override with ``--postgres-url`` and
``--mysql-url`` (``--mysql-url ''`` or ``--postgres-url ''`` leaves one out). Targets: the store
reaches at least 50 % of the raw driver on batches, and at least 1,000 events/s with 8 threads on
PostgreSQL with no gap.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib.util
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_asm_contract._contract.model import Event, EventType, Session
from reference_stores.sql import SqlSessionStore, codec, migrate
from reference_stores.sql.schema import COLUMNS, version_table

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
EVENT_COLUMNS = COLUMNS["events"]


def payload(i: int) -> dict[str, Any]:
    return {
        "i": i,
        "role": "assistant",
        "text": f"message {i}: the quick brown fox jumps over the lazy dog",
        "tokens": {"input": 120 + i % 7, "output": 45},
    }


def make_batches(session_id: str, batches: int, size: int) -> list[list[Event]]:
    return [
        [
            Event(type=EventType.MESSAGE_SENT, session_id=session_id, data=payload(b * size + i))
            for i in range(size)
        ]
        for b in range(batches)
    ]


def timed(run: Callable[[], None]) -> float:
    """Seconds of ``run()``. The garbage left by preparing the run is collected first, so that
    a full collection it would trigger is not charged to the run; collection stays on during
    the run, where whatever the contender allocates costs what it costs."""
    gc.collect()
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


#: Prepares one timed run on fresh tables: yields the run, cleans up after it (not timed).
Contender = Callable[[], contextlib.AbstractContextManager[Callable[[], None]]]


def interleaved(
    events: int, contenders: dict[str, Contender], rounds: int
) -> dict[str, list[float]]:
    """Events/s of every run, contender by contender within each round, round after round.

    Interleaving puts the contenders side by side in time, so a slow spell of the machine or of
    a server (a checkpoint, a neighbour's job) falls on all of them instead of on whichever was
    measured then; each ratio is taken within one round.
    """
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, prepare in contenders.items():
            with prepare() as run:
                rates[name].append(events / timed(run))
    return rates


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """The median of the per-round ratios."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


# -- the store ----------------------------------------------------------------------------------
class DriverClock:
    """Seconds spent inside the DB-API driver (statements and commits) by one engine: what is
    left of a run's time is the store's own work in Python and SQLAlchemy."""

    CALLS = ("do_execute", "do_execute_no_params", "do_executemany", "do_commit", "do_rollback")

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def installed(self, engine: sa.Engine) -> Iterator[None]:
        """The clock on ``engine``'s dialect (which engines of one URL may share) for the
        block's duration."""
        dialect = engine.dialect
        for name in self.CALLS:
            setattr(dialect, name, self._timed(getattr(dialect, name)))
        try:
            yield
        finally:
            for name in self.CALLS:
                delattr(dialect, name)  # the class's method shows through again

    def _timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed_call


@contextlib.contextmanager
def store_run(
    url: str,
    batches: int,
    size: int,
    replay: bool = False,
    clock: DriverClock | None = None,
) -> Iterator[Callable[[], None]]:
    """Batches appended to a fresh store; with ``replay``, the same batches a second time (every
    id is stored, nothing is written) and only that second pass is timed. With ``clock``, the
    time spent inside the driver during the run is added to it."""
    store = SqlSessionStore(url, isolated=True)
    try:
        session_id = f"ses-{uuid.uuid4().hex}"
        work = make_batches(session_id, batches, size)
        for batch in work if replay else make_batches(f"warm-{session_id}", 1, size):
            store.append_events(batch)

        def run() -> None:
            for batch in work:
                store.append_events(batch)

        with contextlib.nullcontext() if clock is None else clock.installed(store.engine):
            yield run
        assert store.get_latest_sequence(session_id) == batches * size
    finally:  # dropping the tables is not part of the figure
        store.close()


# -- the raw driver -----------------------------------------------------------------------------
@contextlib.contextmanager
def scratch_tables(url: str) -> Iterator[str]:
    """The store's schema under a fresh prefix, dropped afterwards; yields the events table."""
    prefix = f"raw{uuid.uuid4().hex[:8]}_"
    migrate.upgrade(url, prefix)
    try:
        yield f"{prefix}events"
    finally:
        migrate.downgrade(url, prefix)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.begin() as connection:
            sa.Table(version_table(prefix), sa.MetaData()).drop(connection, checkfirst=True)
        engine.dispose()


def raw_rows(batches: list[list[Event]], mysql: bool = False) -> list[list[tuple[Any, ...]]]:
    out = []
    number = 0
    for batch in batches:
        rows = []
        for event in batch:
            number += 1
            row = codec.event_row(event, number)
            values = tuple(row[c] for c in EVENT_COLUMNS)
            if mysql:  # ids are VARBINARY (UTF-8 bytes) on MariaDB
                values = tuple(
                    v.encode() if c in ("id", "session_id", "run_id") and v else v
                    for c, v in zip(EVENT_COLUMNS, values, strict=True)
                )
            rows.append(values)
        out.append(rows)
    return out


@contextlib.contextmanager
def raw_run(url: str, batches: int, size: int) -> Iterator[Callable[[], None]]:
    """The same rows, pre-serialised, by the driver's executemany: one transaction per batch."""
    backend = sa.make_url(url).get_backend_name()
    work = raw_rows(make_batches(f"ses-{uuid.uuid4().hex}", batches, size), backend == "mysql")
    with scratch_tables(url) as table:
        columns = ", ".join(f'"{c}"' if backend != "mysql" else f"`{c}`" for c in EVENT_COLUMNS)
        marks = ", ".join(["?" if backend == "sqlite" else "%s"] * len(EVENT_COLUMNS))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        connection = raw_connect(url)
        try:
            cursor = connection.cursor()

            def run() -> None:
                for rows in work:
                    if backend == "sqlite":
                        cursor.execute("BEGIN")
                    cursor.executemany(sql, rows)
                    connection.commit()

            yield run
        finally:
            connection.close()


def raw_connect(url: str) -> Any:
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        connection = sqlite3.connect(parsed.database or "", isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection
    if backend == "postgresql":
        import psycopg

        return psycopg.connect(
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password or None,
            dbname=parsed.database,
        )
    import pymysql  # type: ignore[import-untyped]

    return pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=parsed.database,
        charset="utf8mb4",
    )


# -- eventsourcing ------------------------------------------------------------------------------
def eventsourcing_supports(url: str) -> bool:
    """eventsourcing is installed and has an application recorder for this backend."""
    backend = sa.make_url(url).get_backend_name()
    return importlib.util.find_spec("eventsourcing") is not None and backend in {
        "sqlite",
        "postgresql",
    }


#: Per batch of Events, what eventsourcing is handed before timing starts; and the timed step
#: that turns one of those into its stored events.
EsPrepared = tuple[
    Callable[[list[Event], uuid.UUID, int], list[Any]], Callable[[list[Any]], list[Any]]
]


def ready_made_state() -> EsPrepared:
    """Stored events built beforehand, with the store's payload bytes (the recorder alone)."""
    from eventsourcing.persistence import StoredEvent

    def prepare(batch: list[Event], aggregate: uuid.UUID, first: int) -> list[Any]:
        return [
            StoredEvent(
                aggregate, first + i, "benchmarks:MessageSent", codec.dump_json(e.data).encode()
            )
            for i, e in enumerate(batch)
        ]

    return prepare, lambda stored: stored


def mapped_domain_events() -> EsPrepared:
    """Domain events built beforehand (as the store's Events are), encoded in the timed step by
    eventsourcing's mapper and JSON transcoder, as its applications do."""
    from eventsourcing.domain import DomainEvent
    from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper = Mapper(transcoder=transcoder)
    message_sent = message_sent_class()

    def prepare(batch: list[Event], aggregate: uuid.UUID, first: int) -> list[Any]:
        now = DomainEvent.create_timestamp
        return [message_sent(aggregate, first + i, now(), e.data) for i, e in enumerate(batch)]

    return prepare, lambda events: [mapper.to_stored_event(event) for event in events]


@contextlib.contextmanager
def eventsourcing_run(
    url: str, batches: int, size: int, mapped: bool = False
) -> Iterator[Callable[[], None]]:
    """The same number of events of one aggregate, same payload, by the application recorder's
    ``insert_events``, one transaction per batch: handed ready-made state bytes, or with
    ``mapped`` encoded by eventsourcing itself in the timed run (as the store encodes its own)."""
    prepare, to_stored = (mapped_domain_events if mapped else ready_made_state)()
    table = f"es_{uuid.uuid4().hex[:10]}"
    recorder, cleanup = eventsourcing_recorder(url, table)
    try:
        aggregate = uuid.uuid4()
        work = [
            prepare(batch, aggregate, b * size + 1)
            for b, batch in enumerate(make_batches("ses-es", batches, size))
        ]
        warm = prepare(make_batches("warm", 1, size)[0], uuid.uuid4(), 1)
        recorder.insert_events(to_stored(warm))

        def run() -> None:
            for prepared in work:
                recorder.insert_events(to_stored(prepared))

        yield run
    finally:
        cleanup()


@functools.cache
def message_sent_class() -> Any:
    """An eventsourcing domain event carrying the benchmark's payload, defined once (its topic is
    registered by class) and only when eventsourcing is installed."""
    from dataclasses import dataclass

    from eventsourcing.domain import DomainEvent

    @dataclass(frozen=True)
    class MessageSent(DomainEvent):
        data: dict[str, Any]

    return MessageSent


def eventsourcing_recorder(url: str, table: str) -> tuple[Any, Callable[[], None]]:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        datastore = SQLiteDatastore(db_name=parsed.database or "")
        recorder = SQLiteApplicationRecorder(datastore, events_table_name=table)
        recorder.create_table()
        return recorder, lambda: drop(url, table)
    from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

    pg_datastore = PostgresDatastore(
        dbname=parsed.database or "",
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "",
        password=parsed.password or "",
        pool_size=2,
    )
    pg_recorder = PostgresApplicationRecorder(pg_datastore, events_table_name=table)
    pg_recorder.create_table()

    def cleanup() -> None:
        pg_datastore.close()
        drop(url, table)

    return pg_recorder, cleanup


def drop(url: str, table: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        sa.Table(table, sa.MetaData()).drop(connection, checkfirst=True)
    engine.dispose()


# -- threads ------------------------------------------------------------------------------------
def threaded_singles(url: str, threads: int, per_thread: int) -> tuple[float, int, int]:
    """Events/s of ``threads`` threads appending one event at a time; (rate, gaps, repeats)."""
    store = SqlSessionStore(url, isolated=True)
    try:
        session_id = f"ses-{uuid.uuid4().hex}"
        store.append_event_with_sequence(Event(type=EventType.SESSION_CREATED, session_id="warm"))
        start_line = threading.Barrier(threads + 1)
        numbers: list[list[int]] = [[] for _ in range(threads)]

        def work(index: int) -> None:
            events = [
                Event(type=EventType.MESSAGE_SENT, session_id=session_id, data=payload(i))
                for i in range(per_thread)
            ]
            start_line.wait()
            for event in events:
                numbers[index].append(store.append_event_with_sequence(event).sequence_number or 0)

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        start_line.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        total = threads * per_thread
        stored = [e.sequence_number for e in store.get_events(session_id)]
        returned = sorted(n for per in numbers for n in per)
        gaps = len(set(range(1, total + 1)) - set(stored))
        repeats = len(returned) - len(set(returned)) + (len(stored) - len(set(stored)))
        return total / elapsed, gaps, repeats
    finally:
        store.close()


# -- reads --------------------------------------------------------------------------------------
def read_latencies(url: str, calls: int = 300) -> dict[str, float]:
    """Median µs per call of three reads on one session of 100 events (one thread)."""
    store = SqlSessionStore(url, isolated=True)
    try:
        session_id = f"ses-{uuid.uuid4().hex}"
        store.save_session(Session(id=session_id, agent_id="bench"))
        store.append_events(make_batches(session_id, 1, 100)[0])
        reads: dict[str, Callable[[], object]] = {
            "get_latest_sequence": lambda: store.get_latest_sequence(session_id),
            "get_session": lambda: store.get_session(session_id),
            "get_events(limit=10)": lambda: store.get_events(session_id, limit=10),
        }
        figures = {}
        for name, read in reads.items():
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                read()
                times.append(time.perf_counter() - start)
            figures[name] = statistics.median(times) * 1e6
        return figures
    finally:
        store.close()


def commit_latency_ms(url: str, samples: int = 50) -> float:
    """Median time of a one-row UPDATE and its COMMIT on an otherwise idle connection."""
    table = f"lat_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    metadata = sa.MetaData()
    probe = sa.Table(
        table,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger),
    )
    metadata.create_all(engine)
    try:
        with engine.connect() as connection:
            connection.execute(probe.insert().values(id=1, n=0))
            connection.commit()
            times = []
            for _ in range(samples):
                start = time.perf_counter()
                connection.execute(probe.update().values(n=probe.c.n + 1))
                connection.commit()
                times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000
    finally:
        metadata.drop_all(engine)
        engine.dispose()


# -- the report ---------------------------------------------------------------------------------
def reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception as error:
        print(f"  (skipping {sa.make_url(url).get_backend_name()}: {str(error).splitlines()[0]})")
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--mysql-url", default=MYSQL_URL)
    parser.add_argument("--batches", type=int, default=50, help="batches per run (default 50)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--repeat", type=int, default=5, help="rounds (each figure is a median over them)"
    )
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=250)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="asm-bench-"))
    backends = {"sqlite": f"sqlite:///{scratch / 'bench.db'}"}
    for name, url in (("postgresql", args.postgres_url), ("mariadb", args.mysql_url)):
        if url and reachable(url):
            backends[name] = url
    migrate.upgrade(backends["sqlite"])  # the store's own tables in the SQLite file

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}")
    for name, url in backends.items():
        if name != "sqlite":
            print(f"  {name}: commit of a one-row update takes {commit_latency_ms(url):.2f} ms")
    has_es = importlib.util.find_spec("eventsourcing") is not None
    n = args.batches * args.batch_size
    print(
        f"batch appends: {args.batches} batches of {args.batch_size} events (one session), "
        f"{n} events per run; {args.repeat} rounds, each timing every contender once on fresh "
        "tables; median events/s, and the median of the per-round ratios"
    )
    if not has_es:
        print(
            "  eventsourcing is not installed: its column is skipped. Install it with: "
            '.venv/bin/pip install "eventsourcing[postgres]"'
        )
    print(
        f"{'backend':<11} {'store':>10} {'raw executemany':>16} {'store/raw':>10}"
        f" {'eventsourcing':>14} {'store/es':>9} {'es mapped':>10} {'store/mapped':>13}"
    )
    b, size = args.batches, args.batch_size
    split: dict[str, tuple[float, ...]] = {}
    for name, url in backends.items():
        clocks: list[DriverClock] = []  # one per store run, in round order

        def clocked_store_run(url: str = url, clocks: list[DriverClock] = clocks) -> Any:
            clocks.append(DriverClock())
            return store_run(url, b, size, clock=clocks[-1])

        contenders: dict[str, Contender] = {
            "store": clocked_store_run,
            "raw": functools.partial(raw_run, url, b, size),
        }
        if eventsourcing_supports(url):
            contenders["es"] = functools.partial(eventsourcing_run, url, b, size)
            contenders["es app"] = functools.partial(eventsourcing_run, url, b, size, True)
        rates = interleaved(n, contenders, args.repeat)
        store, raw = rates["store"], rates["raw"]
        micros = [1e6 / rate for rate in store]  # per event, round by round
        inside = [clock.seconds * 1e6 / n for clock in clocks]
        split[name] = (
            statistics.median(micros),
            statistics.median(inside),
            statistics.median(t - i for t, i in zip(micros, inside, strict=True)),
            1e6 / statistics.median(raw),
            *(1e6 / statistics.median(rates[es]) for es in ("es", "es app") if es in rates),
        )
        line = (
            f"{name:<11} {statistics.median(store):>10,.0f} {statistics.median(raw):>16,.0f}"
            f" {median_ratio(store, raw):>10.0%}"
        )
        if "es" in rates:
            es = rates["es"]
            mapped = rates["es app"]
            line += f" {statistics.median(es):>14,.0f} {median_ratio(store, es):>9.0%}"
            line += f" {statistics.median(mapped):>10,.0f} {median_ratio(store, mapped):>13.0%}"
        else:
            line += f" {'n/a':>14}"
        print(line)

    print(
        "\nwhere a batch-appended event's time goes, µs per event (medians of the same rounds):"
        " the store's run,\nthe part of it inside the driver (statements and commits), the rest"
        " (the store's own work in Python\nand SQLAlchemy), and the whole time per event of the"
        " raw executemany and of eventsourcing (recorder alone, and mapped)"
    )
    print(
        f"{'backend':<11} {'store':>8} {'in driver':>10} {'own work':>9} {'raw':>8}"
        f" {'eventsourcing':>14} {'es mapped':>10}"
    )
    for name, figures in split.items():
        cells = [f"{value:.1f}" for value in figures] + ["n/a"] * (6 - len(figures))
        widths = (8, 10, 9, 8, 14, 10)
        print(f"{name:<11}" + "".join(f" {c:>{w}}" for c, w in zip(cells, widths, strict=True)))

    print(
        "\nreplayed batches: the same batches appended again (every id stored, nothing written); "
        "events/s"
    )
    for name, url in backends.items():
        replays = interleaved(
            n, {"store": functools.partial(store_run, url, b, size, True)}, args.repeat
        )
        print(f"{name:<11} {statistics.median(replays['store']):>10,.0f}")

    print(
        f"\n{args.threads} threads x {args.per_thread} single append_event_with_sequence calls "
        "to one session; events/s"
    )
    print(f"{'backend':<11} {'events/s':>10} {'gaps':>6} {'repeats':>8}")
    for name, url in backends.items():
        rate, gaps, repeats = threaded_singles(url, args.threads, args.per_thread)
        print(f"{name:<11} {rate:>10,.0f} {gaps:>6} {repeats:>8}")

    print("\nreads of a session of 100 events, one thread; median µs per call")
    latencies = {name: read_latencies(url) for name, url in backends.items()}
    names = list(next(iter(latencies.values())))
    print(f"{'backend':<11}" + "".join(f" {n:>22}" for n in names))
    for name, figures in latencies.items():
        print(f"{name:<11}" + "".join(f" {figures[n]:>22,.0f}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
