"""Broken Maintenance objects over the correct in-memory store: each makes one mistake of the MNT
rules.

``KIND = "maintenance"``: the kit runs them as ``--asm-store=reference_stores.memory:
InMemorySessionStore --asm-maintenance=tests.zoo.maintenance:<name>`` (with the in-memory
artifact registry), so every failure is the Maintenance object's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from pytest_asm_contract._contract.errors import StoreError
from pytest_asm_contract._contract.maintenance import (
    MaintenanceReport,
    RetentionPolicy,
    as_retention_policy,
)
from pytest_asm_contract._contract.model import EventType
from reference_stores.maintenance_front import Cutoffs, as_now, prune_selection
from reference_stores.memory import InMemoryMaintenance

#: (id, type, sequence) of a session's events, as ``prune_selection`` takes them.
Selection = Callable[[Iterable[tuple[str, EventType | str, int]], RetentionPolicy], list[str]]


class _Zoo(InMemoryMaintenance):
    KIND = "maintenance"

    def _prune_by(self, session_id: str, policy: RetentionPolicy, select: Selection) -> int:
        """The reference prune, removing what ``select`` chooses."""
        store = self._store
        with store._backend("prune_session_events") as gate, store._lock:
            log = store._events.get(session_id, [])
            doomed = set(select(((e.id, e.type, e.sequence_number or 0) for e in log), policy))
            if not doomed:
                return 0
            gate.before_write(f"events of {session_id!r}")
            for event_id in doomed:
                store._event_ids.pop(event_id, None)
            log[:] = [e for e in log if e.id not in doomed]
            store._pruned[session_id] = store._pruned.get(session_id, 0) + len(doomed)
            gate.after_commit("prune_session_events")
        return len(doomed)


class PruneRenumbers(_Zoo):
    """A prune renumbers the events it leaves from 1, as if they were a fresh log (the counter
    itself stays at the highest number assigned)."""

    BREAKS = ("MNT-3", "MNT-7")

    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        store = self._store
        with store._lock:
            removed = super()._prune(session_id, policy)
            if removed:
                log = store._events[session_id]
                log[:] = [e.model_copy(update={"sequence_number": n}) for n, e in enumerate(log, 1)]
                for event in log:  # the id index follows, so only the numbers are wrong
                    store._event_ids[event.id] = event
        return removed


class PruneLowersCounter(_Zoo):
    """A prune lowers the session's counter to the highest number left: when the highest
    numbered event was pruned, its number is handed out again."""

    BREAKS = ("MNT-3", "MNT-7")

    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        store = self._store
        with store._lock:
            removed = super()._prune(session_id, policy)
            log = store._events.get(session_id, [])
            if removed and log:
                store._pruned[session_id] = (log[-1].sequence_number or 0) - len(log)
        return removed


class PruneRemovesRunStarted(_Zoo):
    """A prune treats run_started like any other event (only run_completed is kept)."""

    BREAKS = ("MNT-3",)
    # removing an event the policy does not select is MNT-7's too (the load check sees it); and
    # where fewer events are removable than the excess, execute's events_pruned count differs
    # from a correct store's (the state machine blames that on MNT-4)
    ALSO = ("MNT-4", "MNT-7")

    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        def select(
            events: Iterable[tuple[str, EventType | str, int]], policy: RetentionPolicy
        ) -> list[str]:
            disguised = [
                (i, EventType.MESSAGE_RECEIVED if EventType(t) is EventType.RUN_STARTED else t, n)
                for i, t, n in events
            ]
            return prune_selection(disguised, policy)

        return self._prune_by(session_id, policy, select)


class SoftDeletesExemptTagged(_Zoo):
    """Soft delete ignores exempt_tags: a pinned session goes like any other."""

    BREAKS = ("MNT-1",)
    # execute's soft delete step marks the pinned sessions too, so its sessions_soft_deleted
    # count differs from a correct store's (the state machine blames that on MNT-4)
    ALSO = ("MNT-4",)

    def _soft_delete(
        self, policy: RetentionPolicy, cutoffs: Cutoffs, now: datetime
    ) -> Iterator[int]:
        untagged = policy.model_copy(update={"exempt_tags": []})
        return super()._soft_delete(untagged, cutoffs, now)


class SoftDeleteTouchesUpdatedAt(_Zoo):
    """Soft delete stamps updated_at = now along with deleted_at, as a save would."""

    BREAKS = ("MNT-1",)

    def _soft_delete(
        self, policy: RetentionPolicy, cutoffs: Cutoffs, now: datetime
    ) -> Iterator[int]:
        store = self._store
        with store._lock:
            live = {key for key, s in store._sessions.items() if s.deleted_at is None}
        for marked in super()._soft_delete(policy, cutoffs, now):
            with store._lock:  # stamp each committed batch's sessions
                for key in live:
                    session = store._sessions.get(key)
                    if session is not None and session.deleted_at is not None:
                        store._sessions[key] = session.model_copy(update={"updated_at": now})
            yield marked


class HardDeleteKeepsArtifactMetadata(_Zoo):
    """A hard delete removes the session, its runs, events and counter, but not its artifact
    metadata (which delete_session does remove)."""

    BREAKS = ("MNT-2", "REG-3")
    # the metadata left behind is orphaned and execute's cleaning step removes it, so its
    # artifacts_cleaned count differs from a correct store's (the state machine blames MNT-4)
    ALSO = ("MNT-4",)

    def _hard_delete(self, session_id: str, cutoffs: Cutoffs) -> bool:
        store = self._store
        with store._lock:
            kept = {k: m for k, m in store._artifact_meta.items() if m.session_id == session_id}
            deleted = super()._hard_delete(session_id, cutoffs)
            store._artifact_meta.update(kept)
        return deleted


class ExecuteStopsAtFirstFailure(_Zoo):
    """execute reports the first failing step in errors, and runs none of the steps after it."""

    BREAKS = ("MNT-4",)

    def execute(self, policy: object, *, now: object = None) -> MaintenanceReport:
        checked, moment = as_retention_policy(policy), as_now(now)
        cutoffs = Cutoffs.of(checked, moment)
        limit = checked.max_events_per_session

        def prune_all() -> int:
            over = [] if limit is None else self._sessions_over(limit)
            return sum(self._prune(session_id, checked) for session_id in over)

        steps: list[tuple[str, Callable[[], int]]] = [
            ("sessions_soft_deleted", lambda: sum(self._soft_delete(checked, cutoffs, moment))),
            ("sessions_hard_deleted", lambda: self._hard_delete_all(cutoffs, None)),
            ("events_pruned", prune_all),
            ("artifacts_cleaned", self._clean_orphaned_artifacts),
            ("orphaned_sequences_cleaned", self._clean_orphaned_counters),
        ]
        counts: dict[str, int] = {}
        for name, run in steps:
            try:
                counts[name] = run()
            except StoreError as error:
                return MaintenanceReport(**counts, errors=[f"{name}: {error}"])
        return MaintenanceReport(**counts)


class HealthFlagsHoles(_Zoo):
    """The health check reports every missing number below a session's highest as a gap, so the
    holes pruning leaves count as problems."""

    BREAKS = ("MNT-6",)

    def _health_check(self) -> list[str]:
        problems = super()._health_check()
        with self._store._lock:
            logs = {sid: list(log) for sid, log in self._store._events.items()}
        for session_id, log in sorted(logs.items()):
            held = {e.sequence_number or 0 for e in log}
            missing = [n for n in range(1, max(held, default=0) + 1) if n not in held]
            if missing:
                problems.append(f"session {session_id!r}: gaps in numbering at {missing}")
        return problems
