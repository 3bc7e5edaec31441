"""Conditional creates on moto: racy as shipped, atomic once requests are serialized.

moto handles ``If-None-Match: *`` by looking the key up and then writing it, with no lock around
the two steps. The first tests force two requests into that window (a barrier inside moto's
``put_object``, which both reach only after passing the check) and show that both "win", for raw
requests and for the session store, which then hands out one sequence number twice. The barrier
makes this deterministic; its timeout only guards against a hang.

The other tests use the serialized server (one request at a time, as S3 itself decides
conditional writes atomically) and check that the store keeps IDEM-4, CONC-1 and BATCH-5 with
racing store instances in threads and in two processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.s3.models import S3Backend

from pytest_asm_contract._contract.model import Event, EventType, Session
from reference_stores.s3 import S3SessionStore
from reference_stores.s3._backend import is_conflict
from tests.s3.conftest import BUCKET, make_client

HANG_GUARD_S = 60.0


@contextlib.contextmanager
def rendezvous_in_moto(key: str, parties: int = 2) -> Iterator[list[int]]:
    """Hold the first ``parties`` writes of ``key`` inside moto until all of them arrived.

    moto calls ``put_object`` only after the If-None-Match check passed, so if ``parties``
    requests reach it together, all of them passed the check before any of them wrote.
    Yields a list that records, per write, how many writes of the key were inside at once.
    """
    original = S3Backend.put_object
    barrier = threading.Barrier(parties, timeout=HANG_GUARD_S)
    lock = threading.Lock()
    held = [0]
    inside: list[int] = []

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if key_name != key:
            return original(self, bucket_name, key_name, *args, **kwargs)
        with lock:
            held[0] += 1
            wait = held[0] <= parties
            inside.append(held[0])
        if wait:
            barrier.wait()
        return original(self, bucket_name, key_name, *args, **kwargs)

    S3Backend.put_object = put_object  # type: ignore[method-assign]
    try:
        yield inside
    finally:
        S3Backend.put_object = original  # type: ignore[method-assign]


#: Rounds a race test may run when a request fails in transport (not by losing the race): on a
#: loaded machine the local server now and then drops a connection.
ROUNDS = 3


def _conditional_creates(endpoint: str, key: str, racers: int) -> list[bool]:
    """``racers`` threads create ``key`` with If-None-Match at once; True for each that won.

    One attempt per request, so a transport failure raises instead of coming back, on retry,
    as a conflict with the request's own first attempt.
    """
    clients = [make_client(endpoint, retries=False) for _ in range(racers)]
    start = threading.Barrier(racers, timeout=HANG_GUARD_S)

    def create(index: int) -> bool:
        start.wait()
        try:
            clients[index].put_object(
                Bucket=BUCKET, Key=key, Body=f"{index}".encode(), IfNoneMatch="*"
            )
        except Exception as error:
            if is_conflict(error):
                return False
            raise
        return True

    with ThreadPoolExecutor(racers) as pool:
        return list(pool.map(create, range(racers)))


def _race(endpoint: str, prefix: str, racers: int, parties: int) -> tuple[list[bool], list[int]]:
    """A round of ``_conditional_creates`` on a fresh key held in moto by ``rendezvous_in_moto``;
    (who won, how many writes were inside at once). A round whose request failed in transport
    is run again, up to ``ROUNDS`` rounds."""
    failures = []
    for round_ in range(ROUNDS):
        key = f"{prefix}race-{round_}"
        try:
            with rendezvous_in_moto(key, parties) as inside:
                return _conditional_creates(endpoint, key, racers), inside
        except Exception as error:  # a transport failure: not an outcome of the race
            if is_conflict(error):
                raise
            failures.append(repr(error))
    raise AssertionError(f"every round failed in transport: {failures}")


# -- without serialization: the race is real ----------------------------------------------------
def test_moto_unserialized_lets_two_conditional_creates_both_win(
    racy_moto_endpoint: str, prefix: str
) -> None:
    won, inside = _race(racy_moto_endpoint, prefix, racers=2, parties=2)
    assert won == [True, True], f"both If-None-Match creates of one key succeeded ({inside})"


def test_store_on_unserialized_moto_numbers_two_events_1(
    racy_moto_endpoint: str, prefix: str
) -> None:
    """Two store instances commit position 1 of one session at once: both are told they won."""
    options = {"endpoint_url": racy_moto_endpoint, "bucket": BUCKET, "prefix": prefix}
    first, second = S3SessionStore(**options), S3SessionStore(**options)
    events = [Event(type=EventType.MESSAGE_SENT, session_id="s", id=f"e{i}") for i in (1, 2)]
    start = threading.Barrier(2, timeout=HANG_GUARD_S)

    def append(store: S3SessionStore, event: Event) -> Event:
        start.wait()
        return store.append_event_with_sequence(event)

    with rendezvous_in_moto(first._log_key("s", 1)), ThreadPoolExecutor(2) as pool:
        results = list(pool.map(append, (first, second), events))
    assert [e.sequence_number for e in results] == [1, 1], (
        "both writers believed they created position 1, so both events got number 1"
    )
    fresh = S3SessionStore(**options)
    assert len(fresh.get_events("s")) == 1, "one of the two acknowledged events is lost"
    for store in (first, second, fresh):
        store.close()


# -- with serialization: one winner, and the store keeps the contract ---------------------------
def test_serialized_moto_lets_exactly_one_conditional_create_win(
    moto_endpoint: str, prefix: str
) -> None:
    won, inside = _race(moto_endpoint, prefix, racers=16, parties=1)
    assert sorted(won) == [False] * 15 + [True]
    assert inside == [1], "only the winner reached moto's write"


def _instances(factory: Callable[..., S3SessionStore], count: int) -> list[S3SessionStore]:
    # Separate instances have separate caches and locks: every race goes to the server.
    return [factory() for _ in range(count)]


def test_racing_instances_store_one_new_id_once(
    session_store_factory: Callable[..., S3SessionStore],
) -> None:
    """IDEM-4 across store instances: 12 racers per round, one copy, one number for all."""
    stores = _instances(session_store_factory, 4)
    session = Session(agent_id="racer")
    stores[0].save_session(session)
    for round_ in range(3):
        event = Event(type=EventType.MESSAGE_SENT, session_id=session.id, id=f"same-{round_}")
        start = threading.Barrier(12, timeout=HANG_GUARD_S)

        def append(index: int, event: Event = event, start: threading.Barrier = start) -> Event:
            start.wait()
            copy = event.model_copy(update={"data": {"racer": index}})
            return stores[index % len(stores)].append_event_with_sequence(copy)

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(append, range(12)))
        stored = stores[1].get_events(session.id)
        assert [e.sequence_number for e in stored] == list(range(1, round_ + 2))
        assert all(r == stored[-1] for r in results)


def test_racing_sessions_store_one_new_id_in_exactly_one_session(
    session_store_factory: Callable[..., S3SessionStore],
) -> None:
    """IDEM-1 under a claim-log race: 12 racers (4 instances) append one id to 12 sessions."""
    stores = _instances(session_store_factory, 4)
    for round_ in range(3):
        event_id = f"contested-{round_}"
        start = threading.Barrier(12, timeout=HANG_GUARD_S)

        def append(index: int, event_id: str = event_id, start: threading.Barrier = start) -> Event:
            session_id = f"{event_id}-s{index}"
            event = Event(type=EventType.MESSAGE_SENT, session_id=session_id, id=event_id)
            start.wait()
            return stores[index % len(stores)].append_event_with_sequence(event)

        with ThreadPoolExecutor(12) as pool:
            results = list(pool.map(append, range(12)))
        fresh = session_store_factory()
        holders = [i for i in range(12) if fresh.get_events(f"{event_id}-s{i}")]
        assert len(holders) == 1, f"{event_id} stored in sessions {holders}"
        (stored,) = fresh.get_events(f"{event_id}-s{holders[0]}")
        assert all(r == stored for r in results)


def test_racing_instances_number_without_gaps_and_keep_batches_whole(
    session_store_factory: Callable[..., S3SessionStore],
) -> None:
    """CONC-1 and BATCH-5 across store instances: single appends and batches, all at once."""
    stores = _instances(session_store_factory, 4)
    session_id = "shared"
    start = threading.Barrier(8, timeout=HANG_GUARD_S)

    def work(index: int) -> list[list[Event]]:
        store = stores[index % len(stores)]
        start.wait()
        out = []
        for round_ in range(3):
            size = 1 + (index + round_) % 4
            ids = [f"t{index}-{round_}-{i}" for i in range(size)]
            batch = [Event(type=EventType.MESSAGE_SENT, session_id=session_id, id=i) for i in ids]
            out.append(store.append_events(batch))
        return out

    with ThreadPoolExecutor(8) as pool:
        returned = [batch for batches in pool.map(work, range(8)) for batch in batches]
    _check_log(session_store_factory(), session_id, returned)


def _check_log(store: S3SessionStore, session_id: str, batches: list[list[Event]]) -> None:
    final = store.get_events(session_id)
    total = sum(len(batch) for batch in batches)
    assert [e.sequence_number for e in final] == list(range(1, total + 1))
    by_number = {e.sequence_number: e for e in final}
    for batch in batches:
        numbers = [e.sequence_number or 0 for e in batch]
        assert numbers == list(range(numbers[0], numbers[0] + len(batch))), numbers
        assert all(by_number[e.sequence_number] == e for e in batch)


def _process_worker(spec: tuple[str, dict[str, Any]], worker: int, barrier: Any, out: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pytest_asm_contract._contract.model import Event, EventType
    from reference_stores.s3 import S3SessionStore

    store = S3SessionStore(**spec[1])
    try:
        barrier.wait()
        same = Event(type=EventType.MESSAGE_SENT, session_id="idem", id="one-id")

        def work(thread: int) -> tuple[Event, Event, list[list[Event]]]:
            raced = store.append_event_with_sequence(same)
            # The same id for a session of its own per thread: exactly one of them stores it.
            crossed = store.append_event_with_sequence(
                Event(type=EventType.MESSAGE_SENT, session_id=f"cross-{worker}-{thread}", id="x")
            )
            batches = [
                store.append_events(
                    [
                        Event(
                            type=EventType.MESSAGE_SENT,
                            session_id="shared",
                            id=f"p{worker}-t{thread}-b{b}-{i}",
                        )
                        for i in range(1 + (thread + b) % 3)
                    ]
                )
                for b in range(3)
            ]
            return raced, crossed, batches

        with ThreadPoolExecutor(4) as pool:
            out.put(("ok", list(pool.map(work, range(4)))))
    except BaseException as error:  # report, do not hang the parent
        out.put(("error", repr(error)))
    finally:
        store.close()


def test_two_processes_keep_idem_conc_and_batch_rules(
    session_store_factory: Callable[..., S3SessionStore],
) -> None:
    """IDEM-1, IDEM-4, CONC-1 and BATCH-5 with two processes of four threads each on one prefix."""
    store = session_store_factory()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    out = context.Queue()
    workers = [
        context.Process(target=_process_worker, args=(store.asm_reopen_spec(), w, barrier, out))
        for w in range(2)
    ]
    for worker in workers:
        worker.start()
    reports = [out.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    errors = [payload for status, payload in reports if status != "ok"]
    assert not errors, errors
    results = [item for _, payload in reports for item in payload]
    raced = [r for r, _, _ in results]
    assert all(r == raced[0] and r.sequence_number == 1 for r in raced)
    assert [e.id for e in store.get_events("idem")] == ["one-id"]
    crossed = [c for _, c, _ in results]
    assert all(c == crossed[0] and c.sequence_number == 1 for c in crossed)
    holders = [f"cross-{w}-{t}" for w in range(2) for t in range(4)]
    assert [s for s in holders if store.get_events(s)] == [crossed[0].session_id]
    _check_log(store, "shared", [batch for _, _, batches in results for batch in batches])
