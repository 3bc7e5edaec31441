"""A log-structured session store on S3 (or any S3-compatible service with conditional writes).

Every change to a session is one immutable object at the session's next log position, created with
``put_object(IfNoneMatch='*')``: of several racing writers exactly one creates it, the others
re-read the log and try again at the following position. Event ids are claimed globally with
conditional-create marker objects before they are committed. The full protocol, including recovery
after a crashed writer, is in docs/s3-protocol.md.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import json
import os
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, overload

from pytest_asm_contract.errors import ErrorCode, StoreError
from pytest_asm_contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract.validation import (
    EventQuery,
    Page,
    as_events,
    as_execution_result,
    as_run,
    as_session,
    check_id,
    run_status_filter,
    session_status_filter,
)
from reference_stores.s3 import _log
from reference_stores.s3._backend import (
    DEFAULT_BUCKET,
    ENV_BUCKET,
    encode_name,
    ensure_bucket,
    flag,
    is_conflict,
    is_not_found,
    make_client,
    new_prefix,
    normalise_prefix,
    number,
    translated,
)
from reference_stores.s3._log import SessionState

T = TypeVar("T")

#: Log positions are stored as ``MAX_POSITION - pos`` (19 digits), so a listing, which S3 returns
#: in ascending key order, starts with the newest record.
MAX_POSITION = 10**19 - 1
RECORD_CACHE_SIZE = 4096


@dataclasses.dataclass(frozen=True)
class Claim:
    """This session may store the event id under claim ``claim`` taken in generation ``gen``."""

    claim: str
    gen: int


@dataclasses.dataclass(frozen=True)
class Foreign:
    """The event id is already stored under another session, as ``event``."""

    event: Event


@dataclasses.dataclass
class Plan:
    """What a commit attempt decided: the operations to write (None: nothing to write)."""

    ops: list[dict[str, Any]] | None = None
    reclaim: frozenset[str] = frozenset()
    foreign: Event | None = None


class _Entry:
    """Per-session cache: the newest state this instance knows, and a lock for its writers.

    Reads of one session by many threads share refreshes: a read waits for a refresh that
    started after the read did (so it still sees every write completed before it began), and at
    most one refresh per session is in flight.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refreshed = threading.Condition(self.lock)
        self.write_lock = threading.Lock()
        self.state = SessionState()
        self.loaded = False
        self.started = 0  # refreshes started
        self.completed = 0  # the newest refresh (by start order) that completed
        self.inflight = False


class S3SessionStore:
    """Session store on S3. See docs/s3-protocol.md for the objects and the commit protocol.

    Options (keyword arguments; strings are accepted, as ``--asm-store-option`` passes them):

    - ``bucket``: bucket name (default ``$ASM_S3_BUCKET`` or ``asm-contract``).
    - ``prefix``: key prefix of this store's namespace. Omitted, every store gets a fresh unique
      prefix, so it starts empty; pass the same prefix to share one store between processes.
    - ``client``: a boto3 S3 client to use; otherwise one is built from ``endpoint_url``
      (default ``$ASM_S3_ENDPOINT_URL``), ``region`` (default ``$ASM_S3_REGION`` or us-east-1)
      and the ``aws_access_key_id``/``aws_secret_access_key``/``aws_session_token`` credentials
      (default: boto3's usual lookup).
    - ``create_bucket``: create the bucket if it does not exist (default false).
    - ``snapshot_interval``: every n-th log record carries a full snapshot (default 16).
    - ``claim_grace_seconds``: how long an unfinished event-id claim of another session is
      respected before it is revoked (recovery from a crashed writer; default 10).
    - ``commit_timeout_seconds``: give up a contended commit with ``timeout`` after this long.
    - ``poll_interval_seconds``: how often a long-polling ``get_events`` reads the log again
      (default 0.05; writers of the same instance wake it at once).
    """

    capabilities = frozenset({"shared_backend", "long_poll"})

    def __init__(
        self,
        *,
        bucket: str | None = None,
        prefix: str | None = None,
        client: Any | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        create_bucket: bool | str = False,
        snapshot_interval: int | str = 16,
        claim_grace_seconds: float | str = 10.0,
        commit_timeout_seconds: float | str = 60.0,
        poll_interval_seconds: float | str = 0.05,
        max_workers: int | str = 16,
    ) -> None:
        self._client = make_client(
            "S3SessionStore()",
            client=client,
            endpoint_url=endpoint_url,
            region=region,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
        )
        self._options: dict[str, Any] = {
            "bucket": bucket or os.environ.get(ENV_BUCKET) or DEFAULT_BUCKET,
            "prefix": normalise_prefix(prefix) if prefix is not None else new_prefix("asm"),
            "endpoint_url": endpoint_url,
            "region": region,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "snapshot_interval": number(snapshot_interval, "snapshot_interval", int),
            "claim_grace_seconds": number(claim_grace_seconds, "claim_grace_seconds", float),
            "commit_timeout_seconds": number(
                commit_timeout_seconds, "commit_timeout_seconds", float
            ),
            "poll_interval_seconds": number(poll_interval_seconds, "poll_interval_seconds", float),
            "max_workers": number(max_workers, "max_workers", int),
        }
        self._from_client = client is not None
        self.bucket: str = self._options["bucket"]
        self.prefix: str = self._options["prefix"]
        self._interval: int = self._options["snapshot_interval"]
        if self._interval < 1:
            raise StoreError(ErrorCode.VALIDATION_ERROR, "snapshot_interval must be at least 1")
        self._grace: float = self._options["claim_grace_seconds"]
        self._timeout: float = self._options["commit_timeout_seconds"]
        self._poll: float = max(0.001, self._options["poll_interval_seconds"])
        workers: int = self._options["max_workers"]
        if flag(create_bucket):
            ensure_bucket(self._client, self.bucket, region)
        self._entries: dict[str, _Entry] = {}
        self._entries_lock = threading.Lock()
        self._records: OrderedDict[tuple[str, int], dict[str, Any]] = OrderedDict()
        self._records_lock = threading.Lock()
        self._known_sessions: set[str] = set()  # session index markers known to exist
        self._decisions: dict[str, str] = {}  # batch transaction -> commit/abort
        self._io = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asm-s3-io")
        self._tasks = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asm-s3-task")

    # -- the kit's hooks: fault injection and sharing --------------------------------------------
    def asm_fault_target(self) -> Any:
        """The botocore client every request of this store goes through (the fault hook).

        The kit registers event handlers on it that make the k-th mutating request fail
        (``pytest_asm_contract.faults``, docs/fault-injection.md).
        """
        return self._client

    def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        """How to open this store's namespace from another process (docs/shared-backend.md)."""
        return f"{type(self).__module__}:{type(self).__qualname__}", self.peer_options()

    def peer_options(self) -> dict[str, Any]:
        """Keyword arguments that build another store on this store's bucket and prefix."""
        if self._from_client:
            raise StoreError(
                ErrorCode.VALIDATION_ERROR,
                "a store built from a client object cannot describe how to reconnect; "
                "build it from endpoint_url/region/credentials to share it",
            )
        return {k: v for k, v in self._options.items() if v is not None}

    def peer(self) -> S3SessionStore:
        """Another store instance (with its own cache and client) on the same namespace."""
        return S3SessionStore(**self.peer_options())

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickling (for example in another process) reconnects to the same bucket and prefix.
        return (_rebuild, (self.peer_options(),))

    def close(self) -> None:
        self._tasks.shutdown(wait=True)
        self._io.shutdown(wait=True)

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        session = as_session(session)
        self._index_session(session.id)

        def build(state: SessionState) -> Plan:
            return Plan(None if state.session == session else [_log.session_op(session)])

        self._commit(session.id, build)

    def get_session(self, session_id: str) -> Session:
        check_id(session_id, "session_id")
        session = self._state(session_id).session
        if session is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND,
                f"no session {session_id!r}",
                {"session_id": session_id},
            )
        return session.model_copy(deep=True)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Session]:
        wanted = session_status_filter(status)
        page = Page.of(limit, offset)
        if agent_id is not None:
            check_id(agent_id, "agent_id")
        if page.limit == 0:
            return []
        states = self._parallel(self._state, self._indexed_sessions(), self._tasks)
        sessions = [
            s.session
            for s in states
            if s.session is not None
            and (wanted is None or s.session.status == wanted)
            and (agent_id is None or s.session.agent_id == agent_id)
        ]
        sessions.sort(key=lambda s: (s.created_at, s.id))
        return [s.model_copy(deep=True) for s in page.apply(sessions)]

    def delete_session(self, session_id: str) -> None:
        check_id(session_id, "session_id")

        def build(state: SessionState) -> Plan:
            return Plan(None if state.empty else [_log.delete_op()])

        self._commit(session_id, build)

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        moved_from = self._bind_run(run.id, run.session_id)

        def build(state: SessionState) -> Plan:
            return Plan(None if state.runs.get(run.id) == run else [_log.run_op(run)])

        self._commit(run.session_id, build)
        if moved_from is not None:
            self._finish_move(run, *moved_from)

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run_id")
        marker = self._read_json(self._run_key(run_id), "get_run")
        run = None
        if marker is not None:
            self._check_marker(marker, run_id)
            run = self._state(marker[0]["s"]).runs.get(run_id)
        if run is None:
            raise StoreError(ErrorCode.RUN_NOT_FOUND, f"no run {run_id!r}", {"run_id": run_id})
        return run.model_copy(deep=True)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        check_id(session_id, "session_id")
        wanted = run_status_filter(status)
        page = Page.of(limit, offset)
        runs = [
            r
            for r in self._state(session_id).runs.values()
            if r.session_id == session_id and (wanted is None or r.status == wanted)
        ]
        runs.sort(key=lambda r: (r.started_at, r.id))
        return [r.model_copy(deep=True) for r in page.apply(runs)]

    def get_active_run(self, session_id: str) -> Run | None:
        running = self.list_runs(session_id, status=RunStatus.RUNNING)
        return running[-1] if running else None

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        # Each id is stored by its first occurrence; repeats map to it, whatever their session.
        groups: dict[str, list[Event]] = {}
        seen: set[str] = set()
        for event in batch:
            if event.id not in seen:
                seen.add(event.id)
                groups.setdefault(event.session_id, []).append(event)
        if len(groups) > 1:
            stored = self._append_atomically(groups)
        elif groups:
            ((session_id, group),) = groups.items()
            stored = self._append(session_id, group)
        else:
            stored = {}
        return [stored[event.id].model_copy(deep=True) for event in batch]

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        session, run = checked.session, checked.run
        self._index_session(session.id)
        moved_from = self._bind_run(run.id, session.id)

        def fixed_ops(state: SessionState) -> list[dict[str, Any]]:
            ops = []
            if state.session != session:
                ops.append(_log.session_op(session))
            if state.runs.get(run.id) != run:
                ops.append(_log.run_op(run))
            return ops

        self._append(session.id, checked.events, fixed_ops)
        if moved_from is not None:
            self._finish_move(run, *moved_from)

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        check_id(session_id, "session_id")
        query = EventQuery.of(
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        if query.limit == 0:
            return []
        deadline = time.monotonic() + (query.wait_timeout_ms or 0) / 1000
        entry = self._entry(session_id)
        while True:
            events = self._state(session_id).events
            if query.after is not None:
                events = events[query.after :]  # numbers are dense: event n sits at index n - 1
            found = query.apply(events)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return [event.model_copy(deep=True) for event in found]
            # Long poll: read the log again after the poll interval, or as soon as a writer or a
            # reader of this instance has a newer state of the session.
            with entry.refreshed:
                entry.refreshed.wait(min(self._poll, remaining))

    def get_latest_sequence(self, session_id: str) -> int:
        check_id(session_id, "session_id")
        return len(self._state(session_id).events)

    # -- appending: claims, then one commit per session ------------------------------------------
    def _append(
        self,
        session_id: str,
        events: Sequence[Event],
        fixed_ops: Callable[[SessionState], list[dict[str, Any]]] | None = None,
    ) -> dict[str, Event]:
        """Store ``events`` (all of ``session_id``) in one record; return the stored event by id.

        ``fixed_ops`` adds operations (flush: the session and the run) to the same record.
        """
        claims: dict[str, Claim] = {}
        foreign: dict[str, Event] = {}
        wanted = self._unstored(session_id, events)
        while True:
            self._claim_all(session_id, wanted, claims, foreign)
            build = self._events_builder(events, claims, foreign, fixed_ops)
            state, plan = self._commit(session_id, build)
            if plan.reclaim:
                for event_id in plan.reclaim:
                    claims.pop(event_id, None)
                wanted = sorted(plan.reclaim)
                continue
            return _stored_by_id(state, events, foreign)

    def _append_atomically(self, groups: Mapping[str, Sequence[Event]]) -> dict[str, Event]:
        """A batch over several sessions: all of it becomes visible at once, or none of it.

        Each session gets a pending record naming a transaction id; the batch commits when the
        transaction's decision object is created saying "commit". Readers apply a pending record
        only once its decision says so; a writer that finds an undecided record at a session's
        head waits, and after the grace period creates the decision "abort" itself (exactly one
        decision object can be created). Sessions are written in sorted order, so two batches
        never wait for each other in a cycle.
        """
        order = sorted(groups)
        claims: dict[str, dict[str, Claim]] = {session_id: {} for session_id in order}
        foreign: dict[str, Event] = {}
        wanted = {
            session_id: self._unstored(session_id, groups[session_id]) for session_id in order
        }
        deadline = time.monotonic() + self._timeout
        while True:
            for session_id in order:
                self._claim_all(session_id, wanted[session_id], claims[session_id], foreign)
            txn = uuid.uuid4().hex
            outcomes: dict[str, SessionState] = {}
            pending: set[str] = set()  # sessions that may hold a record of txn (answer or not)
            reclaim = False
            try:
                for session_id in order:
                    build = self._events_builder(
                        groups[session_id], claims[session_id], foreign, None
                    )
                    pending.add(session_id)
                    state, plan = self._commit(session_id, build, xtx=txn)
                    if plan.ops is None:
                        pending.discard(session_id)
                    if plan.reclaim:
                        for event_id in plan.reclaim:
                            claims[session_id].pop(event_id, None)
                        wanted[session_id] = sorted(plan.reclaim)
                        reclaim = True
                        break
                    outcomes[session_id] = state
                if not pending:
                    decision = "abort" if reclaim else "commit"
                else:
                    decision = self._decide(txn, "abort" if reclaim else "commit")
            except StoreError:
                if pending and self._abort_quietly(txn) == "commit":
                    decision = "commit"  # the decision was created; only its answer was lost
                else:
                    raise
            if decision == "abort":
                if pending and not reclaim:
                    _backoff(0)  # another writer gave up waiting for us; try again
                if time.monotonic() > deadline:
                    raise _timed_out("append batch", sessions=order)
                continue
            result: dict[str, Event] = dict(foreign)
            for session_id in order:
                state = outcomes[session_id]
                self._publish(self._entry(session_id), state)
                result.update(_stored_by_id(state, groups[session_id], foreign))
            return result

    def _abort_quietly(self, txn: str) -> str | None:
        """Best effort after a failure: abort ``txn``; the decision that holds, if known."""
        try:
            return self._decide(txn, "abort")
        except StoreError:
            return None

    def _unstored(self, session_id: str, events: Sequence[Event]) -> list[str]:
        state = self._cached_state(session_id)
        return list(dict.fromkeys(e.id for e in events if e.id not in state.index))

    def _claim_all(
        self,
        session_id: str,
        wanted: Sequence[str],
        claims: dict[str, Claim],
        foreign: dict[str, Event],
    ) -> None:
        todo = [i for i in wanted if i not in claims and i not in foreign]
        if not todo:
            return
        gen = self._cached_state(session_id).gen
        claim = functools.partial(self._claim, session_id=session_id, gen=gen)
        for event_id, outcome in zip(todo, self._parallel(claim, todo, self._tasks), strict=True):
            if isinstance(outcome, Foreign):
                foreign[event_id] = outcome.event
            else:
                claims[event_id] = outcome

    @staticmethod
    def _events_builder(
        events: Sequence[Event],
        claims: Mapping[str, Claim],
        foreign: Mapping[str, Event],
        fixed_ops: Callable[[SessionState], list[dict[str, Any]]] | None,
    ) -> Callable[[SessionState], Plan]:
        def build(current: SessionState) -> Plan:
            ops = fixed_ops(current) if fixed_ops is not None else []
            new: list[Event] = []
            seen: set[str] = set()
            reclaim: set[str] = set()
            for event in events:
                if event.id in seen or event.id in current.index or event.id in foreign:
                    continue
                seen.add(event.id)
                claim = claims.get(event.id)
                if claim is None or claim.gen != current.gen or claim.claim in current.revoked:
                    reclaim.add(event.id)
                    continue
                new.append(event.with_sequence(len(current.events) + len(new) + 1))
            if reclaim:
                return Plan(None, reclaim=frozenset(reclaim))
            if new:
                ops.append(_log.events_op(new))
            return Plan(ops or None)

        return build

    # -- transactions over several sessions -----------------------------------------------------
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

    def _resolve(self, session_id: str, state: SessionState, attempt: int) -> None:
        """The record after ``state`` belongs to an undecided batch: wait for it or abort it."""
        assert state.pending is not None
        found = self._read_json(
            self._log_key(session_id, state.pos + 1), "read session log", with_age=True
        )
        if found is not None and found[2] < self._grace:
            _backoff(attempt)
            return
        self._decide(state.pending, "abort")

    def _claim(self, event_id: str, session_id: str, gen: int) -> Claim | Foreign:
        """Reserve ``event_id`` for ``session_id``, or find it stored under another session.

        A marker object per event id names the session that may store it, the claim and the
        generation. Creating it (If-None-Match) claims the id. An existing marker of the same
        session is reused while it is live; one of another session is respected while the id may
        still be committed there (live and younger than the grace period), then revoked through a
        record in that session's log, after which the marker is replaced (If-Match).
        """
        key = self._claim_key(event_id)
        deadline = time.monotonic() + self._timeout
        attempt = 0
        create = True
        while True:
            if time.monotonic() > deadline:
                raise _timed_out("claim event id", event_id=event_id)
            claim = Claim(uuid.uuid4().hex, gen)
            body = {"id": event_id, "s": session_id, "c": claim.claim, "g": claim.gen}
            if create and self._create(key, body, "claim event id"):
                return claim
            create = True
            found = self._read_json(key, "claim event id", with_age=True)
            if found is None:
                continue  # the marker vanished (removed outside the protocol): claim again
            self._check_marker(found, event_id)
            marker, etag, age = found
            owner, held, held_gen = str(marker["s"]), str(marker["c"]), int(marker["g"])
            if owner == session_id:
                state = self._state(session_id)
                if held_gen == state.gen and held not in state.revoked:
                    return Claim(held, held_gen)
                claim = Claim(claim.claim, state.gen)
                body["g"] = state.gen
            else:
                state = self._state(owner)
                stored = state.event(event_id)
                if stored is not None:
                    return Foreign(stored)
                if held_gen == state.gen and held not in state.revoked:
                    if age < self._grace:
                        # The owner may still commit it: look again later, without writing.
                        _backoff(attempt)
                        attempt += 1
                        create = False
                        continue
                    outcome = self._revoke(owner, event_id, held, held_gen)
                    if outcome is not None:
                        return outcome
            if self._replace(key, body, etag, "claim event id"):
                return claim

    def _revoke(self, owner: str, event_id: str, claim: str, gen: int) -> Foreign | None:
        """Revoke ``owner``'s unfinished claim through its log, unless the event got stored."""

        def build(state: SessionState) -> Plan:
            stored = state.event(event_id)
            if stored is not None:
                return Plan(None, foreign=stored)
            if gen != state.gen or claim in state.revoked:
                return Plan(None)
            return Plan([_log.revoke_op([claim])])

        _, plan = self._commit(owner, build)
        return Foreign(plan.foreign) if plan.foreign is not None else None

    # -- run markers ------------------------------------------------------------------------------
    def _bind_run(self, run_id: str, session_id: str) -> tuple[str, str] | None:
        """Point the run's marker at ``session_id``; return (old session, etag) for a move."""
        key = self._run_key(run_id)
        body = {"id": run_id, "s": session_id}
        while True:
            if self._create(key, body, "save run marker"):
                return None
            found = self._read_json(key, "save run marker")
            if found is None:
                continue
            self._check_marker(found, run_id)
            marker, etag, _ = found
            if marker["s"] == session_id:
                return None
            return str(marker["s"]), etag

    def _finish_move(self, run: Run, old_session: str, etag: str) -> None:
        """The run now lives in its new session's log: repoint its marker, drop the old copy."""
        body = {"id": run.id, "s": run.session_id}
        if not self._replace(self._run_key(run.id), body, etag, "move run marker"):
            return  # another writer moved it meanwhile; its save decides

        def build(state: SessionState) -> Plan:
            return Plan([_log.drop_run_op(run.id)] if run.id in state.runs else None)

        self._commit(old_session, build)

    # -- the session index ----------------------------------------------------------------------
    def _index_session(self, session_id: str) -> None:
        if session_id in self._known_sessions:
            return
        self._create(self._index_key(session_id), {"id": session_id}, "index session")
        self._known_sessions.add(session_id)

    def _indexed_sessions(self) -> list[str]:
        root = self.prefix + "x/"
        names: list[str] = []
        with translated("list sessions", write=False):
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=root):
                names.extend(obj["Key"][len(root) :] for obj in page.get("Contents", ()))
        hashed = [n for n in names if n.startswith("~")]
        ids = [_decode_name(n) for n in names if not n.startswith("~")]
        for name in hashed:
            found = self._read_json(root + name, "list sessions")
            if found is not None:
                ids.append(str(found[0]["id"]))
        return ids

    # -- the log ----------------------------------------------------------------------------------
    def _entry(self, session_id: str) -> _Entry:
        with self._entries_lock:
            entry = self._entries.get(session_id)
            if entry is None:
                entry = self._entries[session_id] = _Entry()
            return entry

    def _cached_state(self, session_id: str) -> SessionState:
        entry = self._entry(session_id)
        return entry.state if entry.loaded else self._state(session_id)

    def _state(self, session_id: str) -> SessionState:
        """The session's state at the log's current head.

        A reader that is up to date pays one request (a GET of the next position, which is
        absent); new records cost a LIST and one GET each, and a reader more than
        ``snapshot_interval`` records behind (or a cold one) reads the newest snapshot instead.
        """
        entry = self._entry(session_id)
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
            state = self._read_log(session_id, base, loaded)
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

    def _read_log(self, session_id: str, base: SessionState, loaded: bool) -> SessionState:
        if loaded and self._record(session_id, base.pos + 1, missing_ok=True) is None:
            return base
        log = self._log_prefix(session_id)
        with translated("read session log", write=False):
            listing = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=log, MaxKeys=self._interval + 1
            )
        keys = [obj["Key"] for obj in listing.get("Contents", ())]
        head = _position(keys[0], log) if keys else 0
        if head < base.pos:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"the log of session {session_id!r} is shorter than this store has read "
                f"({head} < {base.pos}); objects were removed outside the protocol",
                {"session_id": session_id},
            )
        start: SessionState | None = base
        positions = list(range(base.pos + 1, head + 1))
        if head - base.pos > self._interval:
            # Far behind (or cold): start from the newest snapshot instead of the cache.
            start, positions = None, list(range(head - head % self._interval, head + 1))
        records = self._parallel(
            lambda p: self._record(session_id, p, snapshot=start is None and p == positions[0]),
            positions,
            self._io,
        )
        if start is None and "before" not in records[0]:
            # Written by a store with another snapshot_interval: replay the whole log.
            start, positions = SessionState(), list(range(1, head + 1))
            records = self._parallel(lambda p: self._record(session_id, p), positions, self._io)
        return self._replay(session_id, start, records)

    def _replay(
        self,
        session_id: str,
        start: SessionState | None,
        records: Iterable[dict[str, Any]],
        assume_committed: bool = False,
    ) -> SessionState:
        """Apply ``records`` (from a snapshot if ``start`` is None) up to an undecided batch."""
        try:
            records = list(records)
            if start is None:
                state = SessionState.from_snapshot(records[0]["before"])
                if state.pos != records[0]["pos"] - 1:
                    raise ValueError("snapshot position mismatch")
            else:
                state = start.evolve()
            state.pending = None
            for record in records:
                xtx = record.get("xtx")
                decision = "commit" if xtx is None or assume_committed else self._decision(xtx)
                if decision is None:
                    state.pending = xtx
                    break
                state.apply(record, session_id, skip=decision != "commit")
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"unreadable log of session {session_id!r}: {type(error).__name__}: {error}",
                {"session_id": session_id},
            ) from error
        return state

    def _publish(self, entry: _Entry, state: SessionState) -> None:
        with entry.lock:
            if state.pos >= entry.state.pos:
                entry.state, entry.loaded = state, True
            entry.refreshed.notify_all()

    @overload
    def _record(
        self, session_id: str, pos: int, snapshot: bool = ..., missing_ok: Literal[False] = ...
    ) -> dict[str, Any]: ...

    @overload
    def _record(
        self, session_id: str, pos: int, snapshot: bool = ..., *, missing_ok: Literal[True]
    ) -> dict[str, Any] | None: ...

    def _record(
        self, session_id: str, pos: int, snapshot: bool = False, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        """The record at ``pos`` (immutable, so cached; cached copies drop their snapshot)."""
        cache_key = (session_id, pos)
        with self._records_lock:
            cached = self._records.get(cache_key)
            if cached is not None:
                self._records.move_to_end(cache_key)
                if not (snapshot and cached.get("has_before")):
                    return cached
        key = self._log_key(session_id, pos)
        found = self._read_json(key, "read session log")
        if found is None:
            if missing_ok:
                return None
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"log record {pos} of session {session_id!r} is missing",
                {"session_id": session_id, "position": pos},
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

    def _commit(
        self, session_id: str, build: Callable[[SessionState], Plan], xtx: str | None = None
    ) -> tuple[SessionState, Plan]:
        """Write what ``build`` decides as the session's next record; retry on lost races.

        ``build`` sees the exact state at the position before the one written (the conditional
        create fails if anyone else wrote there), and is called again after every lost race.
        With ``xtx`` the record is pending on that transaction: the state returned is the one
        it gives once committed, and it is not published.
        """
        entry = self._entry(session_id)
        deadline = time.monotonic() + self._timeout
        txn = xtx or uuid.uuid4().hex
        conflicts = 0
        with entry.write_lock:
            fresh = not entry.loaded
            state = self._cached_state(session_id)
            while True:
                if time.monotonic() > deadline:
                    raise _timed_out("commit", session_id=session_id)
                if state.pending is not None:
                    self._resolve(session_id, state, conflicts)
                    conflicts += 1
                    state, fresh = self._state(session_id), True
                    continue
                plan = build(state)
                if plan.ops is None:
                    if fresh:
                        return state, plan
                    # "Nothing to write" must hold at the head, not just in a cached state.
                    state, fresh = self._state(session_id), True
                    continue
                pos = state.pos + 1
                record: dict[str, Any] = {
                    "v": _log.FORMAT,
                    "session_id": session_id,
                    "pos": pos,
                    "txn": txn,
                    "at": datetime.now(UTC).isoformat(),
                    "ops": plan.ops,
                }
                if xtx is not None:
                    record["xtx"] = xtx
                written = json.loads(_log.encode_record(record))
                new_state = self._replay(session_id, state, [written], assume_committed=True)
                if pos % self._interval == 0:
                    record["before"] = state.to_snapshot()
                if self._create(self._log_key(session_id, pos), record, "commit"):
                    self._remember((session_id, pos), written)
                    if xtx is None:
                        self._publish(entry, new_state)
                    return new_state, plan
                # Lost the race for this position (or an earlier attempt of ours won it).
                if self._record(session_id, pos).get("txn") == txn:
                    if xtx is not None:
                        return new_state, plan
                    return self._state(session_id), plan
                conflicts += 1
                if conflicts > 2:
                    _backoff(conflicts - 3, cap=0.05)
                state, fresh = self._state(session_id), True

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
    def _check_marker(found: tuple[dict[str, Any], str, float], expected_id: str) -> None:
        if found[0].get("id") != expected_id:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"marker for {expected_id!r} names {found[0].get('id')!r} (digest collision or "
                "foreign object)",
                {"id": expected_id},
            )

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

    # -- keys -------------------------------------------------------------------------------------
    def _log_prefix(self, session_id: str) -> str:
        return f"{self.prefix}s/{encode_name(session_id)}/l/"

    def _log_key(self, session_id: str, pos: int) -> str:
        return f"{self._log_prefix(session_id)}{MAX_POSITION - pos:019d}"

    def _index_key(self, session_id: str) -> str:
        return f"{self.prefix}x/{encode_name(session_id)}"

    def _claim_key(self, event_id: str) -> str:
        return f"{self.prefix}i/{encode_name(event_id)}"

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}r/{encode_name(run_id)}"

    def _txn_key(self, txn: str) -> str:
        return f"{self.prefix}t/{txn}"


def _stored_by_id(
    state: SessionState, events: Sequence[Event], foreign: Mapping[str, Event]
) -> dict[str, Event]:
    result = dict(foreign)
    for event in events:
        stored = state.event(event.id)
        if stored is not None:
            result[event.id] = stored
    return result


def _rebuild(options: dict[str, Any]) -> S3SessionStore:
    return S3SessionStore(**options)


def _position(key: str, log_prefix: str) -> int:
    return MAX_POSITION - int(key[len(log_prefix) :])


def _decode_name(name: str) -> str:
    raw = bytearray()
    index = 0
    while index < len(name):
        if name[index] == "%":
            raw.append(int(name[index + 1 : index + 3], 16))
            index += 3
        else:
            raw.append(ord(name[index]))
            index += 1
    return raw.decode("utf-8", "surrogatepass")


def _age(response: Mapping[str, Any]) -> float:
    modified = response.get("LastModified")
    if not isinstance(modified, datetime):
        return 0.0
    header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    now = email.utils.parsedate_to_datetime(header) if header else datetime.now(UTC)
    return max(0.0, (now - modified).total_seconds())


def _backoff(attempt: int, cap: float = 0.2) -> None:
    time.sleep(min(cap, 0.005 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0))


def _timed_out(operation: str, **details: Any) -> StoreError:
    return StoreError(
        ErrorCode.TIMEOUT, f"S3 {operation}: gave up after repeated conflicts", details
    )
