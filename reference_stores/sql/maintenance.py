"""``SqlMaintenance``: the Maintenance port over a ``SqlSessionStore``'s database (MNT-1..MNT-7).

A plain object bound to the store, like ``SqlQueryAPI``: no connection, thread or cache of its
own; every statement runs through the store's ``_read`` and ``_write`` (retries, error mapping).
SQL only narrows the candidates; what is due and what a prune removes is decided by
``maintenance_front``'s functions on the rows read inside the deciding transaction, so every
backend selects alike.

Locking (MNT-7): a session that may change under a decision is locked before it is decided,
``FOR UPDATE`` on PostgreSQL and MariaDB; SQLite's write transaction (``BEGIN IMMEDIATE``) is
already exclusive and SQLAlchemy renders no ``FOR UPDATE`` there. A prune holds the session's
counter row, as an append does, so no append commits between reading the events and deleting
them; a hard delete is ``delete_session``'s own transaction body (``_delete_rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from pytest_asm_contract._contract.errors import validation_error
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import INT64_MAX
from reference_stores.maintenance_front import (
    TERMINAL,
    Cutoffs,
    MaintenanceFront,
    hard_delete_due,
    prune_selection,
    soft_delete_due,
)
from reference_stores.sql import codec
from reference_stores.sql.store import IN_CHUNK, SqlSessionStore

try:
    import sqlalchemy as sa
except ImportError:  # DEP-1: building a store without SQLAlchemy already failed
    sa = None  # type: ignore[assignment]

T = TypeVar("T")
#: Rows per read when a whole table is walked (due sessions, the health check's decoding).
PAGE = 1000
#: What a codec decoder raises for a row that no longer holds its model: pydantic's and json's
#: errors are ValueErrors; a wrong type or a timestamp out of range raise the others.
DECODE_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError)


class SqlMaintenance(MaintenanceFront):
    """Retention, pruning and integrity checks over one ``SqlSessionStore``."""

    def __init__(self, store: SqlSessionStore) -> None:
        if not isinstance(store, SqlSessionStore):
            raise validation_error(
                f"SqlMaintenance serves a SqlSessionStore, got {type(store).__name__}",
                field="store",
            )
        self._store = store
        self._t = store._t
        counters, sessions, events = self._t.sequences, self._t.sessions, self._t.events
        #: A counter whose session does not exist and holds no events (MNT-4).
        self._orphaned_counter = (
            ~sa.exists().where(sessions.c.id == counters.c.session_id),
            ~sa.exists().where(events.c.session_id == counters.c.session_id),
        )

    def __repr__(self) -> str:
        return f"SqlMaintenance({self._store!r})"

    # -- MNT-1 ----------------------------------------------------------------------------------
    def _soft_delete(
        self, policy: RetentionPolicy, cutoffs: Cutoffs, now: datetime
    ) -> Iterator[int]:
        t = self._t.sessions
        ages = []
        if cutoffs.created_before is not None:
            ages.append(t.c.created_at < codec.to_micros(cutoffs.created_before))
        if cutoffs.completed_before is not None:
            terminal = sorted(status.value for status in TERMINAL)
            completed = codec.to_micros(cutoffs.completed_before)
            ages.append(sa.and_(t.c.status.in_(terminal), t.c.updated_at < completed))
        if not ages:
            return
        where = [t.c.deleted_at.is_(None), sa.or_(*ages)]
        if policy.exempt_statuses:
            where.append(t.c.status.not_in([status.value for status in policy.exempt_statuses]))
        batch = partial(self._soft_delete_batch, where, policy, cutoffs, codec.to_micros(now))
        after = None
        while True:
            # One transaction per batch; the keyset moves past every row read, exempt or not,
            # so a batch of sessions kept by their tags cannot be read again.
            done = self._store._write("soft_delete_expired_sessions", partial(batch, after))
            if done is None:
                return
            count, after = done
            yield count

    def _soft_delete_batch(
        self,
        where: list[Any],
        policy: RetentionPolicy,
        cutoffs: Cutoffs,
        stamp: int,
        after: str | None,
        connection: sa.Connection,
    ) -> tuple[int, str] | None:
        """Mark the due sessions among the next batch of candidates after ``after``; how many,
        and the last id read (None: no candidate left)."""
        t = self._t.sessions
        conditions = where if after is None else [*where, t.c.id > after]
        query = sa.select(t).where(*conditions).order_by(t.c.id)
        query = query.limit(min(policy.batch_size, INT64_MAX)).with_for_update()
        rows = connection.execute(query).mappings().all()
        # Not "fewer rows than the limit": PostgreSQL drops a locked row that changed meanwhile
        # and no longer matches, so a short batch does not mean the last one.
        if not rows:
            return None
        due = [
            row["id"]
            for row in rows
            if (session := _decoded(codec.session_from_row, row)) is not None
            and soft_delete_due(session, policy, cutoffs)
        ]
        marked = 0
        for chunk in _chunks(due):
            # deleted_at only: sessions are stored as columns, every other one stays as it is.
            update = t.update().where(t.c.id.in_(chunk), t.c.deleted_at.is_(None))
            marked += connection.execute(update.values(deleted_at=stamp)).rowcount
        return marked, max(row["id"] for row in rows)

    # -- MNT-2 ----------------------------------------------------------------------------------
    def _hard_delete_due(self, cutoffs: Cutoffs) -> Sequence[str]:
        if cutoffs.deleted_before is None:
            return []
        t = self._t.sessions
        before = codec.to_micros(cutoffs.deleted_before)
        where = [t.c.deleted_at.is_not(None), t.c.deleted_at < before]
        return [
            row["id"]
            for rows in self._pages("hard_delete_expired_sessions", t, where)
            for row in rows
            if (session := _decoded(codec.session_from_row, row)) is not None
            and hard_delete_due(session, cutoffs)
        ]

    def _hard_delete(self, session_id: str, cutoffs: Cutoffs) -> bool:
        t = self._t.sessions

        def delete(connection: sa.Connection) -> bool:
            # The session row first, as delete_session locks it first: a save since the due
            # list was read is seen here, and one that comes later waits for this delete.
            query = sa.select(t).where(t.c.id == session_id).with_for_update()
            row = connection.execute(query).mappings().first()
            session = None if row is None else _decoded(codec.session_from_row, row)
            if session is None or not hard_delete_due(session, cutoffs):
                return False
            self._store._delete_rows(connection, session_id)
            return True

        return self._store._write("hard_delete_expired_sessions", delete)

    # -- MNT-3 ----------------------------------------------------------------------------------
    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        if not self._store._limits.storable(session_id):
            return 0
        counters, events = self._t.sequences, self._t.events

        def prune(connection: sa.Connection) -> int:
            # The counter row first, locked as an append locks it: no append of this session
            # commits until the prune does, so the events read below are all there are. A
            # locking read rather than the store's add-0 upsert, which would leave a counter
            # behind for a session that has none: without a counter no event was ever numbered
            # (counters go only with their events), so there is nothing to prune.
            counter = sa.select(counters.c.last_sequence).where(counters.c.session_id == session_id)
            if connection.execute(counter.with_for_update()).first() is None:
                return 0
            held = sa.select(events.c.id, events.c.type, events.c.sequence_number).where(
                events.c.session_id == session_id
            )
            rows = connection.execute(held).all()
            doomed = prune_selection(((r[0], r[1], int(r[2])) for r in rows), policy)
            for chunk in _chunks(doomed):
                mine = (events.c.session_id == session_id, events.c.id.in_(chunk))
                connection.execute(events.delete().where(*mine))
            return len(doomed)  # the counter stays: numbers are never reused (SEQ-2)

        return self._store._write("prune_session_events", prune)

    def _sessions_over(self, limit: int) -> Sequence[str]:
        if limit >= INT64_MAX:
            return []
        events = self._t.events
        query = (
            sa.select(events.c.session_id)
            .group_by(events.c.session_id)
            .having(sa.func.count() > limit)
            .order_by(events.c.session_id)
        )
        return self._store._read("prune_session_events", lambda c: c.execute(query).scalars().all())

    # -- MNT-4, MNT-5 ---------------------------------------------------------------------------
    def _clean_orphaned_artifacts(self) -> int:
        registry, sessions = self._t.artifact_registry, self._t.sessions
        orphaned = ~sa.exists().where(sessions.c.id == registry.c.session_id)
        statement = registry.delete().where(orphaned)
        return self._store._write(
            "clean_orphaned_artifacts", lambda c: int(c.execute(statement).rowcount)
        )

    def _clean_orphaned_counters(self) -> int:
        """Delete the counters of sessions that do not exist and hold no events.

        An append to a session that does not exist creates or bumps its counter and inserts its
        events in one transaction, holding the counter row until commit. One DELETE with NOT
        EXISTS on both tables is safe on SQLite, whose writers run one at a time, but not on
        PostgreSQL: a DELETE that waited for an append's counter lock re-checks the counter row
        once the append commits, yet its subqueries keep the snapshot taken before, in which
        the append's events do not exist; it deletes the counter, and the next append numbers
        from 1 again (MariaDB kept the counter when tried, but does not document which read
        its subqueries use). So the candidates are read first, without locks, then locked by
        key in the appends' (sorted) order, and the DELETE, a new statement with a new
        snapshot, checks both tables again: an append that held a counter has committed its
        events by then and keeps it; a later append waits, then creates the counter anew. A
        counter created after the candidates were read is not among them.
        """
        counters = self._t.sequences
        candidates = (
            sa.select(counters.c.session_id)
            .where(*self._orphaned_counter)
            .order_by(counters.c.session_id)
        )
        found = self._store._read(
            "clean_orphaned_sequences", lambda c: c.execute(candidates).scalars().all()
        )
        cleaned = 0
        for chunk in _chunks(sorted(found)):
            delete = partial(self._delete_counters, chunk)
            cleaned += self._store._write("clean_orphaned_sequences", delete)
        return cleaned

    def _delete_counters(self, session_ids: list[str], connection: sa.Connection) -> int:
        counters = self._t.sequences
        chosen = counters.c.session_id.in_(session_ids)
        if self._store._dialect != "sqlite":
            lock = sa.select(counters.c.session_id).where(chosen).order_by(counters.c.session_id)
            connection.execute(lock.with_for_update()).all()
        statement = counters.delete().where(chosen, *self._orphaned_counter)
        return int(connection.execute(statement).rowcount)

    # -- MNT-6 ----------------------------------------------------------------------------------
    def _health_check(self) -> list[str]:
        problems = self._store._read("health_check", self._integrity)
        decoders: list[tuple[sa.Table, str, Callable[[Mapping[Any, Any]], object]]] = [
            (self._t.sessions, "Session", codec.session_from_row),
            (self._t.runs, "Run", codec.run_from_row),
            (self._t.events, "Event", codec.event_from_row),
            (self._t.artifact_registry, "ArtifactMeta", codec.artifact_meta_from_row),
        ]
        for table, model, decode in decoders:
            for rows in self._pages("health_check", table, []):
                for row in rows:
                    try:
                        decode(row)
                    except DECODE_ERRORS as error:
                        why = " ".join(str(error).split())[:300]
                        problems.append(
                            f"{table.name} row {row['id']!r} does not decode as {model}: "
                            f"{type(error).__name__}: {why}"
                        )
        return problems

    def _integrity(self, connection: sa.Connection) -> list[str]:
        """Counters below their session's numbers, repeated numbers, repeated event ids. Each
        is one statement, so one snapshot: an append commits its counter and events together."""
        events, counters = self._t.events, self._t.sequences
        problems = []
        highest = (
            sa.select(
                events.c.session_id,
                sa.func.max(events.c.sequence_number).label("highest"),
                sa.func.count().label("held"),
            )
            .group_by(events.c.session_id)
            .subquery()
        )
        behind = (
            sa.select(highest, counters.c.last_sequence)
            .select_from(highest.outerjoin(counters, counters.c.session_id == highest.c.session_id))
            .where(
                sa.or_(
                    counters.c.last_sequence.is_(None),
                    counters.c.last_sequence < highest.c.highest,
                )
            )
            .order_by(highest.c.session_id)
        )
        for session_id, top, held, last in connection.execute(behind):
            problems.append(
                f"session {session_id!r}: {held} stored events but no sequence counter "
                f"(highest number {top})"
                if last is None
                else f"session {session_id!r}: sequence counter {last} is below the highest "
                f"stored sequence number {top}"
            )
        repeated = (
            sa.select(events.c.session_id, events.c.sequence_number, sa.func.count())
            .group_by(events.c.session_id, events.c.sequence_number)
            .having(sa.func.count() > 1)
            .order_by(events.c.session_id, events.c.sequence_number)
        )
        for session_id, number, times in connection.execute(repeated):
            problems.append(
                f"session {session_id!r}: sequence number {number} is stored {times} times"
            )
        twice = (
            sa.select(events.c.id, sa.func.count())
            .group_by(events.c.id)
            .having(sa.func.count() > 1)
            .order_by(events.c.id)
        )
        for event_id, times in connection.execute(twice):
            problems.append(f"event id {event_id!r} is stored {times} times")
        return problems

    # -- helpers --------------------------------------------------------------------------------
    def _pages(
        self, operation: str, table: sa.Table, where: list[Any]
    ) -> Iterator[Sequence[sa.RowMapping]]:
        """The rows of ``table`` matching ``where``, in pages keyed on id, one read each."""
        after: str | None = None
        while True:
            conditions = where if after is None else [*where, table.c.id > after]
            query = sa.select(table).where(*conditions).order_by(table.c.id).limit(PAGE)
            rows = self._store._read(operation, partial(_all_rows, query))
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            after = rows[-1]["id"]


def _all_rows(query: sa.Select[Any], connection: sa.Connection) -> Sequence[sa.RowMapping]:
    return connection.execute(query).mappings().all()


def _decoded(decode: Callable[[Mapping[Any, Any]], T], row: Mapping[Any, Any]) -> T | None:
    """``decode(row)``, or None for a row that no longer decodes: it is never due for anything
    (the health check reports it)."""
    try:
        return decode(row)
    except DECODE_ERRORS:
        return None


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start : start + IN_CHUNK])


__all__ = ["SqlMaintenance"]
