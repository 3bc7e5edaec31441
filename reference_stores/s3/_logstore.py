"""Logs on S3: reading, caching and committing the records of a session log or the claim log.

A log is a sequence of immutable records at positions 1, 2, 3, ... under one key prefix, each
created with ``put_object(IfNoneMatch='*')``: of several racing writers exactly one creates a
position, the others read the new records and try again at the following one. Every
``snapshot_interval``-th record carries the whole state before it, so reads stay bounded. Session
logs and the claim log differ only in the state their records add up to. See docs/s3-protocol.md.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar, cast, overload

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import Event
from reference_stores.s3 import _log
from reference_stores.s3._backend import is_conflict, is_not_found, translated
from reference_stores.s3._claims import ClaimState
from reference_stores.s3._log import SessionState

T = TypeVar("T")
S = TypeVar("S", SessionState, ClaimState)

#: Log positions are stored as ``MAX_POSITION - pos`` (19 digits), so a listing, which S3 returns
#: in ascending key order, starts with the newest record.
MAX_POSITION = 10**19 - 1
RECORD_CACHE_SIZE = 4096


@dataclasses.dataclass
class Plan:
    """What a commit attempt decided: the operations to write (None: nothing to write)."""

    ops: list[dict[str, Any]] | None = None
    reclaim: frozenset[str] = frozenset()
    foreign: Event | None = None


@dataclasses.dataclass
class Log(Generic[S]):
    """One log: where its records are, what they name, and the state they add up to."""

    name: str  # for messages: "the log of session 'x'", "the claim log"
    what: str  # for operations: "session log", "claim log"
    prefix: str  # every record's key is the prefix and 19 digits
    ident: tuple[str, str]  # the field and value every record of the log carries
    details: dict[str, Any]  # error details naming the log
    new: Callable[[], S]
    from_snapshot: Callable[[Mapping[str, Any]], S]

    def key(self, pos: int) -> str:
        return f"{self.prefix}{MAX_POSITION - pos:019d}"


class Entry(Generic[S]):
    """Per-log cache: the newest state this instance knows, and a lock for its writers.

    Reads of one log by many threads share refreshes: a read waits for a refresh that started
    after the read did (so it still sees every write completed before it began), and at most one
    refresh per log is in flight.
    """

    def __init__(self, state: S) -> None:
        self.lock = threading.Lock()
        self.refreshed = threading.Condition(self.lock)
        self.write_lock = threading.RLock()
        self.state: S = state
        self.loaded = False
        self.started = 0  # refreshes started
        self.completed = 0  # the newest refresh (by start order) that completed
        self.inflight = False


class LogStore:
    """Reads and commits logs in one bucket; the base of ``S3SessionStore``."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        interval: int,
        grace: float,
        timeout: float,
        workers: int,
    ) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix
        self._interval = interval
        self._grace = grace
        self._timeout = timeout
        self._entries: dict[str, Entry[Any]] = {}
        self._entries_lock = threading.Lock()
        self._records: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._records_lock = threading.Lock()
        self._decisions: dict[str, str] = {}  # batch transaction -> commit/abort
        self._io = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asm-s3-io")
        self._tasks = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asm-s3-task")

    # -- states ------------------------------------------------------------------------------------
    def _entry(self, log: Log[S]) -> Entry[S]:
        with self._entries_lock:
            entry = self._entries.get(log.prefix)
            if entry is None:
                entry = self._entries[log.prefix] = Entry(log.new())
            return cast(Entry[S], entry)

    def _cached_state(self, log: Log[S]) -> S:
        entry = self._entry(log)
        return entry.state if entry.loaded else self._state(log)

    def _state(self, log: Log[S]) -> S:
        """The log's state at its current head.

        A reader that is up to date pays one request (a GET of the next position, which is
        absent); new records cost a LIST and one GET each, and a reader more than
        ``snapshot_interval`` records behind (or a cold one) reads the newest snapshot instead.
        """
        entry = self._entry(log)
        with entry.refreshed:
            wanted = entry.started + 1  # the first refresh that starts after this call
            while entry.completed < wanted:
                if not entry.inflight:
                    entry.inflight = True
                    entry.started += 1
                    ticket = entry.started
                    base, loaded = entry.state, entry.loaded
                    break
                entry.refreshed.wait()
            else:
                return entry.state
        ok = False
        try:
            state = self._read_log(log, base, loaded)
            ok = True
        finally:
            with entry.refreshed:
                entry.inflight = False
                if ok:
                    if state.pos >= entry.state.pos:
                        entry.state, entry.loaded = state, True
                    entry.completed = max(entry.completed, ticket)
                entry.refreshed.notify_all()
        return state

    def _read_log(self, log: Log[S], base: S, loaded: bool) -> S:
        if loaded and self._record(log, base.pos + 1, missing_ok=True) is None:
            return base
        with translated(f"read {log.what}", write=False):
            listing = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=log.prefix, MaxKeys=self._interval + 1
            )
        keys = [obj["Key"] for obj in listing.get("Contents", ())]
        head = MAX_POSITION - int(keys[0][len(log.prefix) :]) if keys else 0
        if head < base.pos:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"{log.name} is shorter than this store has read ({head} < {base.pos}); "
                "objects were removed outside the protocol",
                log.details,
            )
        start: S | None = base
        positions = list(range(base.pos + 1, head + 1))
        if head - base.pos > self._interval:
            # Far behind (or cold): start from the newest snapshot instead of the cache.
            start, positions = None, list(range(head - head % self._interval, head + 1))
        records = self._parallel(
            lambda p: self._record(log, p, snapshot=start is None and p == positions[0]),
            positions,
            self._io,
        )
        if start is None and "before" not in records[0]:
            # Written by a store with another snapshot_interval: replay the whole log.
            start, positions = log.new(), list(range(1, head + 1))
            records = self._parallel(lambda p: self._record(log, p), positions, self._io)
        return self._replay(log, start, records)

    def _replay(
        self,
        log: Log[S],
        start: S | None,
        records: Iterable[dict[str, Any]],
        assume_committed: bool = False,
    ) -> S:
        """Apply ``records`` (from a snapshot if ``start`` is None) up to an undecided batch."""
        try:
            records = list(records)
            if start is None:
                state = log.from_snapshot(records[0]["before"])
                if state.pos != records[0]["pos"] - 1:
                    raise ValueError("snapshot position mismatch")
            else:
                state = start.evolve()
            state.pending = None
            for record in records:
                _log.check_record(record, log.ident, state.pos + 1)
                xtx = record.get("xtx")
                decision = "commit" if xtx is None or assume_committed else self._decision(xtx)
                if decision is None:
                    state.pending = xtx
                    break
                state.apply(record, skip=decision != "commit")
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"{log.name} is unreadable: {type(error).__name__}: {error}",
                log.details,
            ) from error
        return state

    @staticmethod
    def _publish(entry: Entry[S], state: S) -> None:
        with entry.lock:
            if state.pos >= entry.state.pos:
                entry.state, entry.loaded = state, True
            entry.refreshed.notify_all()

    # -- records -----------------------------------------------------------------------------------
    @overload
    def _record(
        self, log: Log[Any], pos: int, snapshot: bool = ..., missing_ok: Literal[False] = ...
    ) -> dict[str, Any]: ...

    @overload
    def _record(
        self, log: Log[Any], pos: int, snapshot: bool = ..., *, missing_ok: Literal[True]
    ) -> dict[str, Any] | None: ...

    def _record(
        self, log: Log[Any], pos: int, snapshot: bool = False, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """The record at ``pos`` (immutable, so cached; cached copies drop their snapshot)."""
        cache_key = (log.prefix, pos)
        with self._records_lock:
            cached = self._records.get(cache_key)
            if cached is not None:
                self._records.move_to_end(cache_key)
                if not (snapshot and cached.get("has_before")):
                    return cached
        found = self._read_json(log.key(pos), f"read {log.what}")
        if found is None:
            if missing_ok:
                return None
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"record {pos} of {log.name} is missing",
                {**log.details, "position": pos},
            )
        record = found[0]
        self._remember(cache_key, record)
        return record

    def _remember(self, cache_key: tuple[str, int], record: dict[str, Any]) -> None:
        slim = {k: v for k, v in record.items() if k != "before"}
        if "before" in record:
            slim["has_before"] = True
        with self._records_lock:
            self._records[cache_key] = slim
            while len(self._records) > RECORD_CACHE_SIZE:
                self._records.popitem(last=False)

    # -- committing --------------------------------------------------------------------------------
    def _commit(
        self, log: Log[S], build: Callable[[S], Plan], xtx: str | None = None
    ) -> tuple[S, Plan]:
        """Write what ``build`` decides as the log's next record; retry on lost races.

        ``build`` sees the exact state at the position before the one written (the conditional
        create fails if anyone else wrote there), and is called again after every lost race.
        With ``xtx`` the record is pending on that transaction: the state returned is the one
        it gives once committed, and it is not published.
        """
        entry = self._entry(log)
        deadline = time.monotonic() + self._timeout
        txn = xtx or uuid.uuid4().hex
        conflicts = 0
        with entry.write_lock:
            fresh = not entry.loaded
            state = self._cached_state(log)
            while True:
                if time.monotonic() > deadline:
                    raise timed_out("commit", **log.details)
                if state.pending is not None:
                    self._resolve(log, state, conflicts)
                    conflicts += 1
                    state, fresh = self._state(log), True
                    continue
                plan = build(state)
                if plan.ops is None:
                    if fresh:
                        return state, plan
                    # "Nothing to write" must hold at the head, not just in a cached state.
                    state, fresh = self._state(log), True
                    continue
                pos = state.pos + 1
                key, value = log.ident
                record: dict[str, Any] = {
                    "v": _log.FORMAT,
                    key: value,
                    "pos": pos,
                    "txn": txn,
                    "at": datetime.now(UTC).isoformat(),
                    "ops": plan.ops,
                }
                if xtx is not None:
                    record["xtx"] = xtx
                written = json.loads(_log.encode_record(record))
                new_state = self._replay(log, state, [written], assume_committed=True)
                if pos % self._interval == 0:
                    record["before"] = state.to_snapshot()
                if self._create(log.key(pos), record, "commit"):
                    self._remember((log.prefix, pos), written)
                    if xtx is None:
                        self._publish(entry, new_state)
                    return new_state, plan
                # Lost the race for this position (or an earlier attempt of ours won it).
                if self._record(log, pos).get("txn") == txn:
                    if xtx is not None:
                        return new_state, plan
                    return self._state(log), plan
                conflicts += 1
                if conflicts > 2:
                    backoff(conflicts - 3, cap=0.05)
                state, fresh = self._state(log), True

    # -- transactions over several sessions -----------------------------------------------------
    def _txn_key(self, txn: str) -> str:
        return f"{self.prefix}t/{txn}"

    def _decision(self, txn: str) -> str | None:
        """'commit' or 'abort' once decided (cached: decisions never change), else None."""
        with self._records_lock:
            known = self._decisions.get(txn)
        if known is not None:
            return known
        found = self._read_json(self._txn_key(txn), "read batch decision")
        if found is None:
            return None
        decision = str(found[0]["d"])
        with self._records_lock:
            self._decisions[txn] = decision
        return decision

    def _decide(self, txn: str, decision: str) -> str:
        """Create the decision object; the decision that holds (ours, or the one made first)."""
        if self._create(self._txn_key(txn), {"d": decision}, "decide batch"):
            with self._records_lock:
                self._decisions[txn] = decision
            return decision
        held = self._decision(txn)
        if held is None:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED, f"decision of batch {txn} vanished", {"txn": txn}
            )
        return held

    def _resolve(self, log: Log[S], state: S, attempt: int) -> None:
        """The record after ``state`` belongs to an undecided batch: wait for it or abort it."""
        assert state.pending is not None
        found = self._read_json(log.key(state.pos + 1), f"read {log.what}", with_age=True)
        if found is not None and found[2] < self._grace:
            backoff(attempt)
            return
        self._decide(state.pending, "abort")

    # -- single objects ---------------------------------------------------------------------------
    def _create(self, key: str, body: Mapping[str, Any], operation: str) -> bool:
        """Create ``key`` if it does not exist; False if it does."""
        data = _log.encode_record(body)
        with translated(operation, write=True):
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    IfNoneMatch="*",
                    ContentType="application/json",
                )
            except Exception as error:
                if is_conflict(error):
                    return False
                raise
        return True

    def _replace(self, key: str, body: Mapping[str, Any], etag: str, operation: str) -> bool:
        """Overwrite ``key`` if it still has ``etag``; False if it changed or vanished."""
        with translated(operation, write=True):
            try:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=_log.encode_record(body),
                    IfMatch=etag,
                    ContentType="application/json",
                )
            except Exception as error:
                if is_conflict(error) or is_not_found(error):
                    return False
                raise
        return True

    def _read_json(
        self, key: str, operation: str, with_age: bool = False
    ) -> tuple[dict[str, Any], str, float] | None:
        """(body, etag, age in seconds by the server's clock), or None if the key is absent."""
        with translated(operation, write=False):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except Exception as error:
                if is_not_found(error):
                    return None
                raise
            body = response["Body"].read()
        age = _age(response) if with_age else 0.0
        return _log.decode_record(body, key), str(response.get("ETag", "")), age

    @staticmethod
    def _parallel(
        function: Callable[[Any], T], items: Sequence[Any], pool: ThreadPoolExecutor
    ) -> list[T]:
        if len(items) <= 1:
            return [function(item) for item in items]
        try:
            futures = [pool.submit(function, item) for item in items]
        except RuntimeError as error:  # the pool was shut down by close()
            raise StoreError(ErrorCode.STORAGE_ERROR, "the store is closed") from error
        results: list[T] = []
        failure: BaseException | None = None
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as error:  # wait for every task before raising the first error
                failure = failure or error
        if failure is not None:
            raise failure
        return results


def _age(response: Mapping[str, Any]) -> float:
    modified = response.get("LastModified")
    if not isinstance(modified, datetime):
        return 0.0
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    now = email.utils.parsedate_to_datetime(header) if header else datetime.now(UTC)
    return max(0.0, (now - modified).total_seconds())


def backoff(attempt: int, cap: float = 0.2) -> None:
    time.sleep(min(cap, 0.005 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0))


def timed_out(operation: str, **details: Any) -> StoreError:
    return StoreError(
        ErrorCode.TIMEOUT, f"S3 {operation}: gave up after repeated conflicts", details
    )
