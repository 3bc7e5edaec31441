"""Conditional creates on moto: racy as shipped, atomic once requests are serialized.

moto handles ``If-None-Match: *`` by looking the key up and then writing it, with no lock around
the two steps. The first tests force two requests into that window (a rendezvous inside moto's
``put_object``, which both reach only after passing the check) and show that both "win", for raw
requests and for the session store, which then hands out one sequence number twice. The
rendezvous makes this deterministic; its timeout only guards against a hang. Every request is sent
once (a retry of a create whose first attempt took effect would be told the key exists), and a
round in which a request failed in transport is run again on fresh keys.

The other tests use the serialized server (one request at a time, as S3 itself decides
conditional writes atomically) and check that the store keeps IDEM-4, CONC-1 and BATCH-5 with
racing store instances in threads and in two processes.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import botocore.exceptions  # type: ignore[import-untyped]
from moto.s3.models import S3Backend

from pytest_asm_contract._contract.model import Event, EventType, Session
from reference_stores.s3 import S3SessionStore
from reference_stores.s3._backend import is_conflict
from tests.stores.s3.conftest import BUCKET, make_client

T = TypeVar("T")

#: Only guards against a hang: nothing here waits for time to pass.
HANG_GUARD_S = 300.0

#: Rounds a race test may run when a request fails in transport: a lost connection says nothing
#: about the race, and on a loaded machine one is possible.
ROUNDS = 3

#: What botocore raises when a connection fails (refused or dropped), as opposed to an answer of
#: the server.
TRANSPORT_ERRORS = (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)

#: A racer's client waits longer than the hang guard, so a write held in moto is released by the
#: rendezvous, which reports why, and a request that times out was hanging: not a flake to retry.
CLIENT_TIMEOUT_S = 2 * HANG_GUARD_S
TIMEOUTS = (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError)


class Rendezvous:
    """Holds the first ``parties`` writes of a key in moto until all of them arrived.

    ``arrivals`` records, per write of the key, how many had arrived (itself included).
    ``outcome`` is "waiting", then "met", "called off" (a racer finished without arriving) or
    "timed out"; a held write that is not met fails, which moto answers with a 500.
    """

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrivals: list[int] = []
        self.outcome = "waiting"
        self._changed = threading.Condition()

    def arrive(self) -> None:
        with self._changed:
            self.arrivals.append(len(self.arrivals) + 1)
            if len(self.arrivals) > self.parties:
                return  # not held
            if len(self.arrivals) == self.parties:
                self._settle("met")
            elif not self._changed.wait_for(lambda: self.outcome != "waiting", HANG_GUARD_S):
                self._settle("timed out")
            if self.outcome != "met":
                raise RuntimeError(f"rendezvous {self.outcome}")

    def call_off(self) -> None:
        """Release the held writes unmet (a racer that is done can no longer arrive)."""
        with self._changed:
            self._settle("called off")

    def _settle(self, outcome: str) -> None:
        if self.outcome == "waiting":
            self.outcome = outcome
            self._changed.notify_all()


@contextlib.contextmanager
def rendezvous_in_moto(key: str, parties: int = 2) -> Iterator[Rendezvous]:
    """Hold the first ``parties`` writes of ``key`` inside moto until all of them arrived.

    moto calls ``put_object`` only after the If-None-Match check passed, so if ``parties``
    requests reach it together, all of them passed the check before any of them wrote.

    moto closes the body of a key it replaces but reads a new key's body for its ETag only when
    it builds the response, so a write replaced in between would be answered with a 500. Each
    write here computes its ETag as it writes: the race stays the one between check and write.
    """
    original = S3Backend.put_object
    rendezvous = Rendezvous(parties)
    writing = threading.Lock()

    def put_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if key_name == key:
            rendezvous.arrive()
        with writing:
            written = original(self, bucket_name, key_name, *args, **kwargs)
            _ = written.etag
        return written

    S3Backend.put_object = put_object  # type: ignore[method-assign]
    try:
        yield rendezvous
    finally:
        S3Backend.put_object = original  # type: ignore[method-assign]


def _in_transport(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) is a failed connection, not an answer of the server
    or a hang."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TIMEOUTS):
            return False
        if isinstance(seen, TRANSPORT_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _racing(calls: Sequence[Callable[[], T]], rendezvous: Rendezvous) -> list[T | Exception]:
    """Run ``calls`` at once in threads; each one's result, or the exception it raised.

    A racer that is done calls the rendezvous off: if it failed before its write arrived, the
    other racer, held in moto, is released at once instead of by the hang guard.
    """
    start = threading.Barrier(len(calls), timeout=HANG_GUARD_S)

    def run(call: Callable[[], T]) -> T | Exception:
        start.wait()
        try:
            return call()
        except Exception as error:
            return error
        finally:
            rendezvous.call_off()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _in_rounds(
    prefix: str, play: Callable[[str], tuple[Rendezvous, list[T | Exception]]]
) -> tuple[str, Rendezvous, list[T]]:
    """``play`` a round under a fresh key prefix until no request failed in transport.

    Returns the prefix, rendezvous and results of that round. A rendezvous that timed out, or a
    failure that is not in transport, fails the test; ``ROUNDS`` rounds all failing in transport
    fail it too.
    """
    failures: list[str] = []
    for round_ in range(ROUNDS):
        round_prefix = f"{prefix}round-{round_}/"
        rendezvous, outcomes = play(round_prefix)
        assert rendezvous.outcome != "timed out", (
            f"a write held in moto waited {HANG_GUARD_S:.0f} s for a second write of its key "
            "that passed the If-None-Match check too, and none came: check and write no longer "
            f"race (writes of the key: {rendezvous.arrivals}, outcomes: {outcomes})"
        )
        errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if not errors:
            return round_prefix, rendezvous, cast(list[T], outcomes)
        if not any(_in_transport(error) for error in errors):
            raise errors[0]
        failures.append(repr(errors))
    raise AssertionError(f"all {ROUNDS} rounds failed in transport: {failures}")


def _client(endpoint: str) -> Any:
    """A racer's client: every request is sent once, and it waits for as long as the race may."""
    return make_client(endpoint, retries=False, timeout=CLIENT_TIMEOUT_S)


def _create(client: Any, key: str, body: bytes) -> bool:
    """Create ``key`` with If-None-Match; False if it exists."""
    try:
        client.put_object(Bucket=BUCKET, Key=key, Body=body, IfNoneMatch="*")
    except Exception as error:
        if is_conflict(error):
            return False
        raise
    return True


def _race(endpoint: str, prefix: str, racers: int, parties: int) -> tuple[list[bool], list[int]]:
    """``racers`` threads create one key with If-None-Match at once, its first ``parties`` writes
    held by ``rendezvous_in_moto``; (who won, the rendezvous' arrivals).

    Each racer has a client of its own that sends every request once, so a transport failure
    raises instead of coming back, on retry, as a conflict with the request's own first attempt.
    """

    def play(round_prefix: str) -> tuple[Rendezvous, list[bool | Exception]]:
        key = f"{round_prefix}race"
        clients = [_client(endpoint) for _ in range(racers)]
        calls = [functools.partial(_create, c, key, f"{i}".encode()) for i, c in enumerate(clients)]
        with rendezvous_in_moto(key, parties) as rendezvous:
            return rendezvous, _racing(calls, rendezvous)

    _, rendezvous, won = _in_rounds(prefix, play)
    return won, rendezvous.arrivals


def _racy_store(endpoint: str, prefix: str) -> S3SessionStore:
    """A store on ``endpoint`` whose client sends every request once.

    With retries, a commit that took effect but whose answer was lost, or was an error, would be
    sent again, be told the position exists and move on to the next one: not the race under test.
    """
    return S3SessionStore(
        client=_client(endpoint),
        bucket=BUCKET,
        prefix=prefix,
        commit_timeout_seconds=HANG_GUARD_S,
    )


# -- without serialization: the race is real ----------------------------------------------------
def test_moto_unserialized_lets_two_conditional_creates_both_win(
    racy_moto_endpoint: str, prefix: str
) -> None:
    won, arrivals = _race(racy_moto_endpoint, prefix, racers=2, parties=2)
    assert won == [True, True], f"both If-None-Match creates of one key succeeded ({arrivals})"


def test_store_on_unserialized_moto_numbers_two_events_1(
    racy_moto_endpoint: str, prefix: str
) -> None:
    """Two store instances commit position 1 of one session at once: both are told they won."""
    events = [Event(type=EventType.MESSAGE_SENT, session_id="s", id=f"e{i}") for i in (1, 2)]

    def play(round_prefix: str) -> tuple[Rendezvous, list[Event | Exception]]:
        stores = [_racy_store(racy_moto_endpoint, round_prefix) for _ in events]
        try:
            calls = [
                functools.partial(store.append_event_with_sequence, event)
                for store, event in zip(stores, events, strict=True)
            ]
            with rendezvous_in_moto(stores[0]._log_key("s", 1)) as rendezvous:
                return rendezvous, _racing(calls, rendezvous)
        finally:
            for store in stores:
                store.close()

    round_prefix, _, results = _in_rounds(prefix, play)
    assert [e.sequence_number for e in results] == [1, 1], (
        "both writers believed they created position 1, so both events got number 1"
    )
    fresh = S3SessionStore(endpoint_url=racy_moto_endpoint, bucket=BUCKET, prefix=round_prefix)
    try:
        assert len(fresh.get_events("s")) == 1, "one of the two acknowledged events is lost"
    finally:
        fresh.close()


# -- with serialization: one winner, and the store keeps the contract ---------------------------
def test_serialized_moto_lets_exactly_one_conditional_create_win(
    moto_endpoint: str, prefix: str
) -> None:
    won, arrivals = _race(moto_endpoint, prefix, racers=16, parties=1)
    assert sorted(won) == [False] * 15 + [True]
    assert arrivals == [1], "only the winner reached moto's write"


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
    barrier = context.Barrier(2, timeout=HANG_GUARD_S)
    out = context.Queue()
    workers = [
        context.Process(target=_process_worker, args=(store.asm_reopen_spec(), w, barrier, out))
        for w in range(2)
    ]
    for worker in workers:
        worker.start()
    reports = [out.get(timeout=HANG_GUARD_S) for _ in workers]
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
