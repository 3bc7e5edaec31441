"""A log-structured session store on S3 (or any S3-compatible service with conditional writes).

Every change to a session is one immutable object at the session's next log position, created with
``put_object(IfNoneMatch='*')``: of several racing writers exactly one creates it, the others
re-read the log and try again at the following position. Event ids are claimed globally through
one claim log, one record per batch, before they are committed. The full protocol, including
recovery after a crashed writer, is in docs/s3-protocol.md.

The store is one class of about 650 lines on purpose: every operation is the same optimistic
commit (``_logstore.LogStore._commit``) with its own plan, and the claim protocol of an append is
read best next to the commit that follows it. The log machinery (``_logstore.py``), a session's
state (``_log.py``), the claim state (``_claims.py``) and keys and errors (``_backend.py``) are
modules of their own.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
)
from pytest_asm_contract._contract.validation import (
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
from reference_stores._options import boolean, non_negative_float, positive_float, positive_int
from reference_stores.s3 import _claims, _log
from reference_stores.s3._backend import (
    DEFAULT_BUCKET,
    ENV_BUCKET,
    encode_name,
    ensure_bucket,
    make_client,
    new_prefix,
    normalise_prefix,
    translated,
)
from reference_stores.s3._claims import Claim, ClaimState, Marker, Outcome
from reference_stores.s3._log import SessionState
from reference_stores.s3._logstore import Log, LogStore, Plan, backoff, timed_out

__all__ = ["Claim", "Claimed", "Plan", "S3SessionStore"]


@dataclasses.dataclass
class Claimed:
    """What claiming got: claims by session and id, and the ids stored under other sessions."""

    claims: dict[str, dict[str, Claim]] = dataclasses.field(default_factory=dict)
    foreign: dict[str, Event] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _ClaimRequest:
    """One thread's ids to claim, waiting to be written with other threads' in one record."""

    wanted: Mapping[str, Sequence[str]]
    done: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None


class S3SessionStore(LogStore):
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
    #: Why the kit's QRY checks skip for this store (see docs/api.md).
    asm_query_unavailable = (
        "an S3 bucket lists objects by key prefix only: searching, ordering and paging across "
        "sessions would read every session's log"
    )
    asm_artifact_registry_unavailable = (
        "the S3 store keeps no artifact metadata beside its session logs (the bytes go to "
        "S3ArtifactStore)"
    )
    asm_maintenance_unavailable = (
        "an S3 session log is written whole by its writer: pruning would rewrite every log it "
        "touches, and retention belongs to the bucket's lifecycle rules"
    )

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
        # Every option is checked before the client, the thread pools or the bucket exist.
        create = boolean(create_bucket, "create_bucket")
        self._options: dict[str, Any] = {
            "bucket": bucket or os.environ.get(ENV_BUCKET) or DEFAULT_BUCKET,
            "prefix": normalise_prefix(prefix) if prefix is not None else new_prefix("asm"),
            "endpoint_url": endpoint_url,
            "region": region,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
            "snapshot_interval": positive_int(snapshot_interval, "snapshot_interval"),
            "claim_grace_seconds": non_negative_float(claim_grace_seconds, "claim_grace_seconds"),
            "commit_timeout_seconds": positive_float(
                commit_timeout_seconds, "commit_timeout_seconds"
            ),
            "poll_interval_seconds": non_negative_float(
                poll_interval_seconds, "poll_interval_seconds"
            ),
            "max_workers": positive_int(max_workers, "max_workers"),
        }
        made = make_client(
            "S3SessionStore()",
            client=client,
            endpoint_url=endpoint_url,
            region=region,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
        )
        super().__init__(
            made,
            bucket=self._options["bucket"],
            prefix=self._options["prefix"],
            interval=self._options["snapshot_interval"],
            grace=self._options["claim_grace_seconds"],
            timeout=self._options["commit_timeout_seconds"],
            workers=self._options["max_workers"],
        )
        self._from_client = client is not None
        self._poll: float = max(0.001, self._options["poll_interval_seconds"])
        if create:
            ensure_bucket(self._client, self.bucket, region)
        self._known_sessions: set[str] = set()  # session index markers known to exist
        self._claims: Log[ClaimState] = Log(
            name="the claim log",
            what="claim log",
            prefix=f"{self.prefix}c/",
            ident=_claims.IDENT,
            details={"log": "claims"},
            new=ClaimState,
            from_snapshot=ClaimState.from_snapshot,
        )
        # Claim requests of this instance's threads, written together in one record.
        self._claim_queue: list[_ClaimRequest] = []
        self._claim_queue_lock = threading.Lock()

    # -- the kit's hooks: fault injection and sharing --------------------------------------------
    def asm_fault_target(self) -> Any:
        """The botocore client every request of this store goes through (the fault hook).

        The kit registers event handlers on it that make the k-th mutating request fail
        (``pytest_asm_contract._faults.injection``, docs/fault-injection.md).
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

        self._commit(self._session_log(session.id), build)

    def get_session(self, session_id: str) -> Session:
        check_id(session_id, "session_id")
        session = self._state(self._session_log(session_id)).session
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
        states = self._parallel(
            lambda s: self._state(self._session_log(s)), self._indexed_sessions(), self._tasks
        )
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

        self._commit(self._session_log(session_id), build)

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        moved_from = self._bind_run(run.id, run.session_id)

        def build(state: SessionState) -> Plan:
            return Plan(None if state.runs.get(run.id) == run else [_log.run_op(run)])

        self._commit(self._session_log(run.session_id), build)
        if moved_from is not None:
            self._finish_move(run, *moved_from)

    def get_run(self, run_id: str) -> Run:
        check_id(run_id, "run_id")
        marker = self._read_json(self._run_key(run_id), "get_run")
        run = None
        if marker is not None:
            self._check_marker(marker, run_id)
            run = self._state(self._session_log(marker[0]["s"])).runs.get(run_id)
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
            for r in self._state(self._session_log(session_id)).runs.values()
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
        entry = self._entry(self._session_log(session_id))
        while True:
            events = self._state(self._session_log(session_id)).events
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
        return len(self._state(self._session_log(session_id)).events)

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
        claims: dict[str, dict[str, Claim]] = {session_id: {}}
        foreign: dict[str, Event] = {}
        wanted = self._unstored(session_id, events)
        while True:
            self._claim_missing({session_id: wanted}, claims, foreign)
            build = self._events_builder(events, claims[session_id], foreign, fixed_ops)
            state, plan = self._commit(self._session_log(session_id), build)
            if plan.reclaim:
                for event_id in plan.reclaim:
                    claims[session_id].pop(event_id, None)
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
            self._claim_missing(wanted, claims, foreign)  # one claim record for all sessions
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
                    state, plan = self._commit(self._session_log(session_id), build, xtx=txn)
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
                    backoff(0)  # another writer gave up waiting for us; try again
                if time.monotonic() > deadline:
                    raise timed_out("append batch", sessions=order)
                continue
            result: dict[str, Event] = dict(foreign)
            for session_id in order:
                state = outcomes[session_id]
                self._publish(self._entry(self._session_log(session_id)), state)
                result.update(_stored_by_id(state, groups[session_id], foreign))
            return result

    def _abort_quietly(self, txn: str) -> str | None:
        """Best effort after a failure: abort ``txn``; the decision that holds, if known."""
        try:
            return self._decide(txn, "abort")
        except StoreError:
            return None

    def _unstored(self, session_id: str, events: Sequence[Event]) -> list[str]:
        state = self._cached_state(self._session_log(session_id))
        return list(dict.fromkeys(e.id for e in events if e.id not in state.index))

    def _claim_missing(
        self,
        wanted: Mapping[str, Sequence[str]],
        claims: dict[str, dict[str, Claim]],
        foreign: dict[str, Event],
    ) -> None:
        """Claim the ``wanted`` ids (by session) that have neither a claim nor a stored copy."""
        todo = {
            session_id: [i for i in ids if i not in claims[session_id] and i not in foreign]
            for session_id, ids in wanted.items()
        }
        got = self._claim(todo)
        for session_id, got_claims in got.claims.items():
            claims[session_id].update(got_claims)
        foreign.update(got.foreign)

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

    # -- claims: one record in the claim log per batch ------------------------------------------
    def _claim(self, wanted: Mapping[str, Iterable[str]]) -> Claimed:
        """Reserve the ``wanted`` ids (by session), or find them stored under another session.

        Claims are decided on the claim log's head and written as one record (``_claims``). A
        live unused claim of another session is respected until its claim record is
        ``claim_grace_seconds`` old by the server's clock, then revoked through that session's
        log and taken over.
        """
        todo = {s: list(dict.fromkeys(ids)) for s, ids in wanted.items()}
        todo = {s: ids for s, ids in todo.items() if ids}
        result = Claimed()
        deadline = time.monotonic() + self._timeout
        attempt = 0
        while todo:
            outcome = self._claim_together(todo)
            for session_id, claims in outcome.claims.items():
                result.claims.setdefault(session_id, {}).update(claims)
            result.foreign.update(outcome.foreign)
            todo, waiting = {}, False
            ages: dict[int, float] = {}
            for event_id, (session_id, marker) in outcome.blocked.items():
                if marker.pos not in ages:
                    ages[marker.pos] = self._claim_age(marker)
                if ages[marker.pos] < self._grace:
                    waiting = True  # the owner may still commit it: look again later
                else:
                    stored = self._revoke(marker, event_id)
                    if stored is not None:
                        result.foreign[event_id] = stored
                        continue
                todo.setdefault(session_id, []).append(event_id)
            if todo and time.monotonic() > deadline:
                raise timed_out("claim event ids", event_ids=sorted(outcome.blocked)[:10])
            if waiting:
                backoff(attempt)
                attempt += 1
        return result

    def _claim_together(self, wanted: Mapping[str, Sequence[str]]) -> Outcome:
        """One claim record for this request and those other threads queued meanwhile.

        The thread that gets the claim log's writer lock writes every queued request; the
        others find theirs done when they get the lock. A failure fails every request it held.
        """
        request = _ClaimRequest(wanted)
        with self._claim_queue_lock:
            self._claim_queue.append(request)
        with self._entry(self._claims).write_lock:
            if not request.done:
                with self._claim_queue_lock:
                    batch, self._claim_queue = self._claim_queue, []
                try:
                    outcomes = self._write_claims([r.wanted for r in batch])
                except BaseException as error:
                    for waiting in batch:
                        waiting.error, waiting.done = error, True
                    raise
                for waiting, outcome in zip(batch, outcomes, strict=True):
                    waiting.outcome, waiting.done = outcome, True
        if request.error is not None:
            failure = request.error
            if isinstance(failure, StoreError):  # each caller raises its own instance
                cause = failure.__cause__ or failure
                raise StoreError(failure.code, failure.message, failure.details) from cause
            raise failure
        assert request.outcome is not None
        return request.outcome

    def _write_claims(self, requests: Sequence[Mapping[str, Sequence[str]]]) -> list[Outcome]:
        outcomes: list[Outcome] = []

        def build(state: ClaimState) -> Plan:
            record = _claims.ClaimRecord(
                state,
                uuid.uuid4().hex,
                own=lambda s: self._cached_state(self._session_log(s)),
                owner=lambda s: self._state(self._session_log(s)),
            )
            outcomes[:] = [record.decide(wanted) for wanted in requests]
            return Plan(record.ops())

        self._commit(self._claims, build)
        return outcomes

    def _claim_age(self, marker: Marker) -> float:
        """How old the claim record that set ``marker`` is, by the server's clock."""
        found = self._read_json(self._claims.key(marker.pos), "read claim log", with_age=True)
        # A record expired after a later snapshot (a lifecycle rule) is long past any grace.
        return float("inf") if found is None else found[2]

    def _revoke(self, marker: Marker, event_id: str) -> Event | None:
        """Revoke an unfinished claim through its session's log, unless the event got stored."""

        def build(state: SessionState) -> Plan:
            stored = state.event(event_id)
            if stored is not None:
                return Plan(None, foreign=stored)
            if not marker.live_in(state):
                return Plan(None)
            return Plan([_log.revoke_op([marker.claim])])

        _, plan = self._commit(self._session_log(marker.session), build)
        return plan.foreign

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

        self._commit(self._session_log(old_session), build)

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

    @staticmethod
    def _check_marker(found: tuple[dict[str, Any], str, float], expected_id: str) -> None:
        if found[0].get("id") != expected_id:
            raise StoreError(
                ErrorCode.STORAGE_READ_FAILED,
                f"marker for {expected_id!r} names {found[0].get('id')!r} (digest collision or "
                "foreign object)",
                {"id": expected_id},
            )

    # -- keys -------------------------------------------------------------------------------------
    def _session_log(self, session_id: str) -> Log[SessionState]:
        return Log(
            name=f"the log of session {session_id!r}",
            what="session log",
            prefix=f"{self.prefix}s/{encode_name(session_id)}/l/",
            ident=("session_id", session_id),
            details={"session_id": session_id},
            new=SessionState,
            from_snapshot=SessionState.from_snapshot,
        )

    def _log_key(self, session_id: str, pos: int) -> str:
        return self._session_log(session_id).key(pos)

    def _index_key(self, session_id: str) -> str:
        return f"{self.prefix}x/{encode_name(session_id)}"

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}r/{encode_name(run_id)}"


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
