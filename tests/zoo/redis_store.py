"""Session stores on Redis (redis-py): a correct one, and three that write a batch by session.

``RedisSessionStore`` keeps the contract with no fault hook: every write is one Lua script (or
one command), which Redis runs whole and alone, so neither a reader nor a crash ever sees part
of it, and every read is one command. Its keys live under a prefix of its own
(``asm:<hex>:``), which another process reopens (``shared_backend``); ``close()`` of the store
that made the prefix deletes its keys.

The broken ones write a batch with one script per session and a flush as two scripts (the
session and the run, then the events): a failure or a killed writer between two scripts leaves
part of the operation stored. They differ in what their fault hook announces, and the kit's
driver-level check catches all three (docs/fault-injection.md).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import redis

from pytest_asm_contract import (
    BackendFault,
    ErrorCode,
    Event,
    EventQuery,
    EventType,
    ExecutionResult,
    FaultGate,
    Page,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    StoreError,
    as_events,
    as_execution_result,
    as_run,
    as_session,
    check_id,
    run_status_filter,
    session_status_filter,
    validation_error,
)
from tests.zoo import HISTORY_RULES
from tests.zoo.sqlite_toy import json_body

REDIS_URL = os.environ.get("ASM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# Keys, under the store's prefix P: P..'sessions', P..'runs' (hashes id -> JSON body),
# P..'run-session' (run id -> session id), P..'runs-of:'..sid (hash run id -> body),
# P..'events:'..sid (list of bodies, the i-th holding sequence number i), P..'ids-of:'..sid
# (the ids in the same order), P..'event-ids' (hash event id -> 'seq:sid', ids are global).
_LUA_STORE_EVENTS = """
local function store_events(p, args, first)
  local index = p .. 'event-ids'
  local out = {}
  for i = first, #args, 3 do
    local id, sid, body = args[i], args[i + 1], args[i + 2]
    local found = redis.call('HGET', index, id)
    if not found then
      local seq = redis.call('RPUSH', p .. 'events:' .. sid, body)
      redis.call('RPUSH', p .. 'ids-of:' .. sid, id)
      found = seq .. ':' .. sid
      redis.call('HSET', index, id, found)
    end
    local colon = string.find(found, ':', 1, true)
    local seq = tonumber(string.sub(found, 1, colon - 1))
    local owner = string.sub(found, colon + 1)
    out[#out + 1] = {seq, redis.call('LINDEX', p .. 'events:' .. owner, seq - 1)}
  end
  return out
end
"""
_LUA_SAVE_RUN = """
local function save_run(p, id, sid, body)
  local old = redis.call('HGET', p .. 'run-session', id)
  if old and old ~= sid then
    redis.call('HDEL', p .. 'runs-of:' .. old, id)
  end
  redis.call('HSET', p .. 'runs', id, body)
  redis.call('HSET', p .. 'run-session', id, sid)
  redis.call('HSET', p .. 'runs-of:' .. sid, id, body)
end
"""
#: ARGV: prefix, then (id, session id, body) per event.
APPEND = _LUA_STORE_EVENTS + "return store_events(ARGV[1], ARGV, 2)"
#: ARGV: prefix, run id, its session id, its body.
SAVE_RUN = _LUA_SAVE_RUN + "save_run(ARGV[1], ARGV[2], ARGV[3], ARGV[4])"
#: ARGV: prefix, session id, session body, run id, run body, then the events as for APPEND.
FLUSH = (
    _LUA_STORE_EVENTS
    + _LUA_SAVE_RUN
    + """
local p = ARGV[1]
redis.call('HSET', p .. 'sessions', ARGV[2], ARGV[3])
save_run(p, ARGV[4], ARGV[2], ARGV[5])
return store_events(p, ARGV, 6)
"""
)
#: ARGV: prefix, session id.
DELETE_SESSION = """
local p, sid = ARGV[1], ARGV[2]
for _, id in ipairs(redis.call('LRANGE', p .. 'ids-of:' .. sid, 0, -1)) do
  redis.call('HDEL', p .. 'event-ids', id)
end
for _, id in ipairs(redis.call('HKEYS', p .. 'runs-of:' .. sid)) do
  redis.call('HDEL', p .. 'runs', id)
  redis.call('HDEL', p .. 'run-session', id)
end
redis.call('DEL', p .. 'events:' .. sid, p .. 'ids-of:' .. sid, p .. 'runs-of:' .. sid)
redis.call('HDEL', p .. 'sessions', sid)
"""


def unreachable(url: str = REDIS_URL) -> str | None:
    """None when the Redis server at ``url`` answers, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"Redis at {url} is unreachable ({type(error).__name__}: {error})"
    finally:
        client.close()
    return None


def _key(value: object, what: str) -> str:
    """An id used in a key or a field: valid per the contract, and text Redis can hold."""
    text = check_id(value, what)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise validation_error(f"{what} is not valid Unicode text", field=what) from None
    return text


def _event_args(events: Sequence[Event]) -> list[str]:
    """(id, session id, body) per event; the body without a number, which is its position."""
    args: list[str] = []
    for event in events:
        body = json_body(event.model_copy(update={"sequence_number": None}))
        args += [event.id, event.session_id, body]
    return args


def _stored(rows: Sequence[Sequence[Any]]) -> list[Event]:
    return [Event.model_validate_json(body).with_sequence(int(seq)) for seq, body in rows]


@contextlib.contextmanager
def _storage_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except (redis.ConnectionError, BackendFault) as error:
        raise StoreError(
            ErrorCode.STORAGE_CONNECTION_FAILED, f"{operation} failed: {error}"
        ) from error
    except redis.TimeoutError as error:
        raise StoreError(ErrorCode.TIMEOUT, f"{operation} timed out: {error}") from error
    except redis.RedisError as error:
        raise StoreError(ErrorCode.STORAGE_ERROR, f"{operation} failed: {error}") from error


class RedisSessionStore:
    """The session store on one Redis server, under a key prefix of its own; correct, also
    across processes and crashes."""

    capabilities = frozenset({"shared_backend"})

    def __init__(self, prefix: str | None = None, url: str = REDIS_URL) -> None:
        self._owned = prefix is None
        self._prefix = prefix or f"asm:{uuid.uuid4().hex}:"
        self._url = url
        self._redis = redis.Redis.from_url(url, decode_responses=True)
        self._append = self._redis.register_script(APPEND)
        self._save_run = self._redis.register_script(SAVE_RUN)
        self._flush = self._redis.register_script(FLUSH)
        self._delete_session = self._redis.register_script(DELETE_SESSION)

    # -- plumbing -------------------------------------------------------------------------------
    @classmethod
    def service_problem(cls) -> str | None:
        """Why the tests cannot reach the Redis server, or None."""
        return unreachable()

    def asm_reopen_spec(self) -> tuple[str, dict[str, Any]]:
        target = f"{type(self).__module__}:{type(self).__name__}"
        return target, {"prefix": self._prefix, "url": self._url}

    def close(self) -> None:
        try:
            if self._owned:
                keys = list(self._redis.scan_iter(match=f"{self._prefix}*", count=1000))
                for start in range(0, len(keys), 500):
                    self._redis.delete(*keys[start : start + 500])
        finally:
            self._redis.close()

    def _k(self, *parts: str) -> str:
        return self._prefix + "".join(parts)

    @contextlib.contextmanager
    def _writing(self, operation: str) -> Iterator[None]:
        """Around one write operation: its backend failures become storage errors."""
        with _storage_errors(operation):
            self._operation_begins(operation)
            yield
            self._operation_done(operation)

    def _run(self, script: Any, args: list[str], what: str) -> Any:
        self._before_backend_write(what)
        return script(args=[self._prefix, *args])

    # The broken variants announce their writes here; the correct store has no fault hook.
    def _operation_begins(self, operation: str) -> None:
        pass

    def _before_backend_write(self, what: str) -> None:
        pass

    def _operation_done(self, operation: str) -> None:
        pass

    # -- sessions -------------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        session = as_session(session)
        body = json_body(session)
        with self._writing("save_session"):
            self._before_backend_write("session")
            self._redis.hset(self._k("sessions"), session.id, body)

    def get_session(self, session_id: str) -> Session:
        key = _key(session_id, "session_id")
        with _storage_errors("get_session"):
            body = self._redis.hget(self._k("sessions"), key)
        if body is None:
            raise StoreError(
                ErrorCode.SESSION_NOT_FOUND, f"no session {key!r}", {"session_id": key}
            )
        return Session.model_validate_json(body)

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
        with _storage_errors("list_sessions"):
            bodies = self._redis.hvals(self._k("sessions"))
        sessions = [Session.model_validate_json(body) for body in bodies]
        sessions = [
            s
            for s in sessions
            if (wanted is None or s.status == wanted)
            and (agent_id is None or s.agent_id == agent_id)
        ]
        sessions.sort(key=lambda s: (s.created_at, s.id))
        return page.apply(sessions)

    def delete_session(self, session_id: str) -> None:
        key = _key(session_id, "session_id")
        with self._writing("delete_session"):
            self._run(self._delete_session, [key], "delete_session")

    # -- runs -----------------------------------------------------------------------------------
    def save_run(self, run: Run) -> None:
        run = as_run(run)
        body = json_body(run)
        with self._writing("save_run"):
            self._run(self._save_run, [run.id, run.session_id, body], "run")

    def get_run(self, run_id: str) -> Run:
        key = _key(run_id, "run_id")
        with _storage_errors("get_run"):
            body = self._redis.hget(self._k("runs"), key)
        if body is None:
            raise StoreError(ErrorCode.RUN_NOT_FOUND, f"no run {key!r}", {"run_id": key})
        return Run.model_validate_json(body)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Run]:
        key = _key(session_id, "session_id")
        wanted = run_status_filter(status)
        page = Page.of(limit, offset)
        with _storage_errors("list_runs"):
            bodies = self._redis.hvals(self._k("runs-of:", key))
        runs = [Run.model_validate_json(body) for body in bodies]
        runs = [r for r in runs if wanted is None or r.status == wanted]
        runs.sort(key=lambda r: (r.started_at, r.id))
        return page.apply(runs)

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
        if not batch:
            return []
        args = _event_args(batch)
        with self._writing("append_events"):
            return _stored(self._run(self._append, args, "events"))

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        session, run = checked.session, checked.run
        args = [session.id, json_body(session), run.id, json_body(run)]
        args += _event_args(checked.events)
        with self._writing("flush"):
            self._run(self._flush, args, "flush")

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
        key = _key(session_id, "session_id")
        query = EventQuery.of(
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )
        first = min(query.after or 0, 2**62)
        with _storage_errors("get_events"):
            bodies = self._redis.lrange(self._k("events:", key), first, -1)
        return query.apply(
            Event.model_validate_json(body).with_sequence(first + i)
            for i, body in enumerate(bodies, 1)
        )

    def get_latest_sequence(self, session_id: str) -> int:
        key = _key(session_id, "session_id")
        with _storage_errors("get_latest_sequence"):
            return int(self._redis.llen(self._k("events:", key)))


class BatchScriptPerSession(RedisSessionStore):
    """append_events runs one script per session of the batch, and flush saves the session and
    the run in one script and its events in another, each as it goes: a failure or a killed
    writer between two scripts leaves part of the batch or of the flush stored. No fault hook:
    the kit fails its Redis writes in redis-py itself."""

    BREAKS = ("FLUSH-3", "BATCH-6")
    # a reader, or another process, can see a batch or a flush half applied
    ALSO = (*HISTORY_RULES, "CONC-3")
    #: Between two scripts: the round trip to a server that is not on this machine.
    ROUND_TRIP_S = 0.001

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = as_events(events)
        if not batch:
            return []
        by_session: dict[str, list[int]] = {}
        for index, event in enumerate(batch):
            by_session.setdefault(event.session_id, []).append(index)
        out: dict[int, Event] = {}
        with self._writing("append_events"):
            for number, indexes in enumerate(by_session.values()):
                if number:
                    time.sleep(self.ROUND_TRIP_S)
                args = _event_args([batch[i] for i in indexes])
                stored = _stored(self._run(self._append, args, "events"))
                out.update(zip(indexes, stored, strict=True))
        return [out[i] for i in range(len(batch))]

    def flush(self, result: ExecutionResult | Mapping[str, Any]) -> None:
        checked = as_execution_result(result)
        session, run = checked.session, checked.run
        args = [session.id, json_body(session), run.id, json_body(run)]
        events = _event_args(checked.events)
        with self._writing("flush"):
            self._run(self._flush, args, "session and run")
            if events:
                time.sleep(self.ROUND_TRIP_S)
                self._run(self._append, events, "events")


class BatchScriptPerSessionGateOnce(BatchScriptPerSession):
    """As BatchScriptPerSession, with a FaultGate announced once per operation, before its first
    script: the hook's own FLUSH-3 check never fails the second script, the driver's does (and
    says that the gate announced fewer writes than the store made)."""

    BREAKS = ("FLUSH-3", "BATCH-6")
    ALSO = BatchScriptPerSession.ALSO

    def __init__(self, prefix: str | None = None, url: str = REDIS_URL) -> None:
        super().__init__(prefix, url)
        self._gate = FaultGate()

    def asm_fault_target(self) -> FaultGate:
        return self._gate

    def _operation_begins(self, operation: str) -> None:
        self._gate.before_write(operation)

    def _operation_done(self, operation: str) -> None:
        self._gate.after_commit(operation)


class BatchScriptPerSessionGateEach(BatchScriptPerSessionGateOnce):
    """As BatchScriptPerSession, with a FaultGate announced before each script: both the hook's
    FLUSH-3 check and the driver's fail the second script."""

    BREAKS = ("FLUSH-3", "BATCH-6")
    ALSO = BatchScriptPerSession.ALSO

    def _operation_begins(self, operation: str) -> None:
        pass

    def _before_backend_write(self, what: str) -> None:
        self._gate.before_write(what)
