"""Drawing the inputs of one step (ids, events, sessions, runs, filters, paging), and the state
that drawing keeps; the base of every rule class.

The rules draw and hand what they drew to the :class:`~.referee.Referee`; the only state they keep
themselves is about drawing: the example's pools (and strategies cached for them), the event ids
used so far, the pipeline in progress and the last flushed payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from pytest_asm_contract._contract.model import Event, ExecutionResult, Run, RunStatus, Session
from pytest_asm_contract._machine.inputs import (
    EVENT_TYPES,
    FEW_TYPES,
    HOSTILE_ID,
    ID_STYLE,
    NOTHING,
    ONE_IN_FOUR,
    RUN_EXTRAS,
    RUN_STATUSES,
    SESSION_EXTRAS,
    SESSION_STATUSES,
    SMALL_JSON,
    STATUS_FILTER_KIND,
    SUPPLIED_SEQUENCE,
    TURNS,
    Pools,
    weighted,
)
from pytest_asm_contract._machine.oracle import Outcome
from pytest_asm_contract._machine.referee import Referee
from pytest_asm_contract._machine.writes import flush
from pytest_asm_contract.strategies import OFFSETS, near_misses


class Drawing:
    """Draws a step's inputs from the strategies cached for the example's pools.

    The attributes are set by ``ContractMachine.__init__``.
    """

    referee: Referee
    pools: Pools
    #: Events drawn with a new id so far (their ids are ``e1``, ``e2``...).
    fresh: int
    #: Every event id drawn so far, to append, flush or imitate again.
    used_event_ids: list[str]
    #: The last payload the store flushed, to flush again (FLUSH-4).
    last_flush: Any

    def _flush(self, payload: Any, result: ExecutionResult | None, *, again: bool = False) -> bool:
        """Hand a flush to the referee; remember the payload if the store took it."""
        stored = self.referee.act(flush, payload, result, again=again)
        if stored:
            self.last_flush = payload
        return stored

    def _cache_strategies(self) -> None:
        pools = self.pools
        self.any_session = st.sampled_from(pools.sessions)
        self.any_run = st.sampled_from(pools.runs)
        self.maybe_run = st.one_of(st.none(), self.any_run)
        self.any_agent = st.sampled_from(pools.agents)
        self.any_moment = st.sampled_from(pools.moments or [datetime(2026, 1, 1, tzinfo=UTC)])
        self.maybe_moment = weighted((4, NOTHING), (1, self.any_moment))
        self.filters = self._event_filters()
        self.event_fields = st.tuples(
            self.maybe_run, EVENT_TYPES, self.any_moment, SMALL_JSON, SUPPLIED_SEQUENCE
        )
        self.event_fields_for_run = st.tuples(
            EVENT_TYPES, self.any_moment, SMALL_JSON, SUPPLIED_SEQUENCE
        )
        self.session_fields = st.tuples(
            self.any_agent,
            SESSION_STATUSES,
            self.any_moment,
            self.any_moment,
            self.maybe_moment,
            SMALL_JSON,
            SESSION_EXTRAS,
        )
        self.run_fields = st.tuples(
            self.any_run, RUN_STATUSES, self.any_moment, TURNS, SMALL_JSON, RUN_EXTRAS
        )

    # -- drawing --------------------------------------------------------------------------------
    def _session_id(self, data: st.DataObject) -> str:
        return data.draw(self.any_session)

    def _pick(self, data: st.DataObject, items: Sequence[Any]) -> Any:
        """One of ``items`` (an index draw: cheap, and it shrinks towards the first)."""
        return items[data.draw(st.integers(0, len(items) - 1))]

    def _new_event_id(self, data: st.DataObject) -> str:
        style = data.draw(ID_STYLE)
        if style == 0:
            return data.draw(HOSTILE_ID)
        if style == 1 and self.used_event_ids:
            known: str = self._pick(data, self.used_event_ids)
            twin: str = self._pick(data, near_misses(known))
            return twin
        self.fresh += 1
        return f"e{self.fresh}"

    def _event(
        self,
        data: st.DataObject,
        *,
        session_id: str | None = None,
        run_id: Any = ...,
        event_id: str | None = None,
    ) -> Event:
        sid = session_id if session_id is not None else self._session_id(data)
        eid = event_id if event_id is not None else self._new_event_id(data)
        if run_id is ...:
            run_id, type_, timestamp, payload, supplied = data.draw(self.event_fields)
        else:
            type_, timestamp, payload, supplied = data.draw(self.event_fields_for_run)
        event = Event(
            id=eid,
            type=type_,
            timestamp=timestamp,
            session_id=sid,
            run_id=run_id,
            data=payload,
            sequence_number=supplied,
        )
        if eid not in self.used_event_ids:
            self.used_event_ids.append(eid)
        return event

    def _event_or_reappend(self, data: st.DataObject, session_id: str | None = None) -> Event:
        """A new event, or (one time in four) a new copy of an id used before."""
        if self.used_event_ids and data.draw(ONE_IN_FOUR) == 0:
            removed = sorted(self.referee.removed)
            prefer_removed = bool(removed) and data.draw(st.booleans())
            eid = self._pick(data, removed if prefer_removed else self.used_event_ids)
            previous = self.referee.model.by_id.get(eid)
            sid = session_id or (
                previous.session_id
                if previous is not None and data.draw(st.booleans())
                else self._session_id(data)
            )
            return self._event(data, session_id=sid, event_id=eid)
        return self._event(data, session_id=session_id)

    def _session(self, data: st.DataObject, session_id: str | None = None) -> Session:
        agent, status, created, updated, deleted, metadata, extras = data.draw(self.session_fields)
        tags, context, parent = extras
        return Session(
            id=session_id if session_id is not None else self._session_id(data),
            agent_id=agent,
            status=status,
            created_at=created,
            updated_at=updated,
            deleted_at=deleted,
            metadata=metadata,
            tags=tags,
            context=context,
            parent_session_id=parent,
        )

    def _run(
        self,
        data: st.DataObject,
        *,
        session_id: str | None = None,
        status: RunStatus | None = None,
        run_id: str | None = None,
    ) -> Run:
        drawn_id, drawn_status, started, turns, metadata, extras = data.draw(self.run_fields)
        cost, run_input, provider = extras
        return Run(
            id=run_id if run_id is not None else drawn_id,
            session_id=session_id if session_id is not None else self._session_id(data),
            status=status if status is not None else drawn_status,
            started_at=started,
            turn_count=turns,
            metadata=metadata,
            cost_usd=cost,
            input=run_input,
            provider=provider,
        )

    @staticmethod
    def _for_session(bad: Any, session_id: str) -> Any:
        """An invalid event moved to ``session_id`` (unless its session id is what is wrong)."""
        if isinstance(bad, Event) and isinstance(bad.session_id, str) and bad.session_id:
            return Event.model_construct(**{**bad.__dict__, "session_id": session_id})
        return bad

    def _offset_into(self, data: st.DataObject, matching: Outcome, offset: Any) -> Any:
        """An offset that lands inside what the filters match (where paging mistakes show)."""
        if not matching.succeeds or len(matching.result) < 2:
            return offset
        return data.draw(st.integers(1, len(matching.result) - 1))

    def _status_filter(self, data: st.DataObject, every: list[Any], present: list[Any]) -> Any:
        """A status filter: none, one that matches something (as enum or string), any, or junk.

        ``present`` lists the statuses in the store, one entry per session or run, so the
        commonest status is the likeliest filter.
        """
        choice = data.draw(STATUS_FILTER_KIND)
        if choice < 25:
            return None
        if choice >= 94:
            return "sleeping"
        status = self._pick(data, present if present and choice < 80 else every)
        return status.value if choice % 2 else status

    def _event_filters(self) -> st.SearchStrategy[dict[str, Any]]:
        moments = self.pools.moments or [datetime(2026, 1, 1, tzinfo=OFFSETS[0])]
        since = st.tuples(
            st.sampled_from(moments), st.sampled_from([-1, 0, 0, 1]), st.sampled_from(OFFSETS)
        ).map(lambda t: (t[0] + timedelta(microseconds=t[1])).astimezone(t[2]))
        count = weighted((2, NOTHING), (1, st.integers(0, 5)))
        valid = st.fixed_dictionaries(
            {
                "run_id": weighted((2, NOTHING), (1, st.sampled_from(self.pools.runs))),
                "type": weighted(
                    (3, NOTHING),
                    (1, st.sampled_from(FEW_TYPES)),
                    (1, st.sampled_from([t.value for t in FEW_TYPES])),
                ),
                "since": weighted((3, NOTHING), (1, since)),
                "after": count,
                "before": weighted((2, NOTHING), (1, st.integers(0, 7))),
                "limit": count,
            }
        )
        invalid = st.sampled_from(
            [
                {"limit": -1},
                {"after": -1},
                {"before": -2},
                {"type": "bogus_type"},
                {"since": datetime(2026, 1, 1, 12, 0)},
                {"limit": True},
                {"after": 1.5},
            ]
        )
        return weighted((4, valid), (1, invalid))
