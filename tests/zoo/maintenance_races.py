"""Broken maintenance whose mistake only shows while clients read: MNT-7 under load.

``KIND = "maintenance"``: run over the correct in-memory store, like ``maintenance.py``.
"""

from __future__ import annotations

from pytest_asm_contract._contract.maintenance import RetentionPolicy
from reference_stores.maintenance_front import prune_selection
from reference_stores.memory import InMemoryMaintenance


class PruneOneByOne(InMemoryMaintenance):
    """Prunes a session one event at a time, taking the store's lock for each removal only: a
    tailing or re-reading client sees a prune half done."""

    KIND = "maintenance"
    BREAKS = ("MNT-7",)

    def _prune(self, session_id: str, policy: RetentionPolicy) -> int:
        store = self._store
        with store._lock:
            log = list(store._events.get(session_id, []))
        doomed = prune_selection(((e.id, e.type, e.sequence_number or 0) for e in log), policy)
        for event_id in doomed:
            with store._lock:
                events = store._events.get(session_id, [])
                events[:] = [e for e in events if e.id != event_id]
                store._event_ids.pop(event_id, None)
                store._pruned[session_id] = store._pruned.get(session_id, 0) + 1
        return len(doomed)
