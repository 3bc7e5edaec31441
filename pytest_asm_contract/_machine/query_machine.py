"""The QueryAPI as a Hypothesis state machine, checked against :class:`~.query_model.QueryModel`.

The write rules go through the session store's port (``save_session``, ``save_run``,
``append_events``, ``delete_session``) with ids, agents, tags, instants and providers from small
pools, so that ties, boundaries and collisions are common, and odd token values (bools, floats,
negatives, strings, missing keys). The query rules call the QueryAPI built from that store with
random filters, orders and limits, follow every cursor to the end and compare the whole result
with the model. The first mismatch raises :class:`QueryMismatch` naming the QRY rule it breaks,
the call, what the model expected, what came back and the writes that built the state.

Hypothesis stops at the first mismatch without shrinking (its shrinking has no time limit:
measured up to two minutes on one broken QueryAPI); :func:`minimize` then drops writes while
the same rule still fails, replaying on fresh stores within a time budget, so the report shows
a short sequence of store and query calls, as Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    initialize,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.model import (
    Event,
    Run,
    Session,
)
from pytest_asm_contract._contract.port import close_store
from pytest_asm_contract._contract.rules import get_rule
from pytest_asm_contract._contract.usage import PricingTable
from pytest_asm_contract._machine.cutting import cut_down, first_failure
from pytest_asm_contract._machine.query_drawing import (
    SESSION_IDS,
    Step,
    Write,
    cost_filters,
    event_fields,
    event_filters,
    limits,
    pricing_tables,
    run_fields,
    run_filters,
    session_filters,
    sessions,
    usage_filters,
)
from pytest_asm_contract._machine.query_model import QueryModel
from pytest_asm_contract._machine.repro import call
from pytest_asm_contract._machine.values import exact_difference

#: The rules the machine can name in a failure.
QUERY_MACHINE_RULES = (
    "QRY-1",
    "QRY-2",
    "QRY-3",
    "QRY-4",
    "QRY-6",
    "QRY-7",
    "QRY-8",
    "QRY-9",
    "QRY-10",
)
STEP_COUNT = 30
MINIMIZE_SECONDS = 10.0
#: Large enough for every match the small pools allow, so one page holds them all.
ONE_PAGE = 1000


# -- pools: few values, so that filters hit, orders tie and boundaries are exact --------------
class QueryMismatch(AssertionError):
    """The QueryAPI answered otherwise than the model: ``rule_id`` names the rule broken."""

    def __init__(
        self,
        rule_id: str,
        call: str,
        expected: object,
        got: object,
        writes: list[Write],
        step: Step,
    ) -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id
        self.call, self.expected, self.got = call, expected, got
        self.writes, self.step = writes, step

    def __str__(self) -> str:
        code = [call(method, value) for method, value in self.writes] or ["# (none)"]
        steps = "\n".join(f"    {line}" for c in code for line in c.splitlines())

        def shown(value: object) -> str:
            return str(value).replace("\n", "\n" + " " * 10)

        return (
            f"{self.rule_id} violated: {get_rule(self.rule_id).statement}\n"
            f"call:     {shown(self.call)}\n"
            f"expected: {shown(self.expected)}\n"
            f"got:      {shown(self.got)}\n"
            f"after these {len(self.writes)} writes to a fresh store (`query` is the QueryAPI "
            f"built from it):\n{steps}"
        )


def _close(expected: float, got: object) -> bool:
    return isinstance(got, float | int) and math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12)


def _query_code(method: str, *args: Any, **kwargs: Any) -> str:
    """Source of ``query.method(...)`` (``repro.call`` writes ``store.``)."""
    return "query" + call(method, *args, **kwargs).removeprefix("store")


def _ids(records: Sequence[Any]) -> list[str]:
    return [r.id for r in records]


F = TypeVar("F", bound=Callable[..., None])


def _query_step(check: F) -> F:
    """Remember the running query step, so that a mismatch can be replayed."""

    @functools.wraps(check)
    def step(self: QueryMachine, **arguments: Any) -> None:
        self.step = (check.__name__, arguments)
        check(self, **arguments)

    return step  # type: ignore[return-value]


class QueryMachine(RuleBasedStateMachine):
    """Writes through the store, mirrors the writes in the model, compares every query.

    Use :func:`query_machine` to bind it to a store factory and a QueryAPI builder.
    """

    store_factory: ClassVar[Callable[[], Any]]
    query_factory: ClassVar[Callable[[Any], Any]]

    def __init__(self) -> None:
        super().__init__()
        self.store = type(self).store_factory()
        self.query = type(self).query_factory(self.store)
        self.model = QueryModel()
        self.writes: list[Write] = []
        self.step: Step = ("", {})
        self.next_event = 0

    def teardown(self) -> None:
        close_store(self.store)

    def write(self, method: str, value: Any) -> None:
        """One write through the store's port, mirrored in the model. Runs and events go to
        stored sessions only (a store may check that): for another session, nothing happens."""
        if method in ("save_run", "append_events"):
            session_id = value.session_id if method == "save_run" else value[0].session_id
            if session_id not in self.model.sessions:
                return
        getattr(self.store, method)(value)
        getattr(self.model, method)(value)
        self.writes.append((method, value))

    # -- writes --------------------------------------------------------------------------------
    session_ids: Bundle[str] = Bundle("session_ids")

    @initialize(
        target=session_ids,
        batch=st.lists(sessions, min_size=1, max_size=4, unique_by=lambda s: s.id),
        runs=st.lists(run_fields, min_size=2, max_size=6, unique_by=lambda f: f["id"]),
        events=st.lists(event_fields, min_size=2, max_size=8),
    )
    def fill_store(
        self, batch: list[Session], runs: list[dict[str, Any]], events: list[dict[str, Any]]
    ) -> MultipleResults[str]:
        """Sessions, then runs and events dealt to them in turn, so that queries find some."""
        for session in batch:
            self.save_session(session)
        for n, fields in enumerate(runs):
            self.save_runs(batch[n % len(batch)].id, [fields])
        for n, session in enumerate(batch):
            if events[n :: len(batch)]:
                self.append_events(session.id, events[n :: len(batch)])
        return multiple(*(session.id for session in batch))

    @rule(target=session_ids, session=sessions)
    def save_session(self, session: Session) -> str:
        self.write("save_session", session)
        return session.id

    @rule(session_id=session_ids, runs=st.lists(run_fields, min_size=1, max_size=2))
    def save_runs(self, session_id: str, runs: list[dict[str, Any]]) -> None:
        for fields in runs:
            self.write("save_run", Run(session_id=session_id, **fields))

    @rule(session_id=session_ids, events=st.lists(event_fields, min_size=1, max_size=3))
    def append_events(self, session_id: str, events: list[dict[str, Any]]) -> None:
        batch = []
        for fields in events:
            self.next_event += 1
            batch.append(Event(id=f"e{self.next_event}", session_id=session_id, **fields))
        self.write("append_events", batch)

    # Deletes empty the store fast: only while it holds a few sessions.
    @precondition(lambda self: len(self.model.sessions) >= 3)
    @rule(session_id=consumes(session_ids))
    def delete_session(self, session_id: str) -> None:
        self.write("delete_session", session_id)

    # -- searches ------------------------------------------------------------------------------
    @rule(
        filters=session_filters,
        order_by=st.sampled_from(("updated_at_desc", "created_at_asc", "created_at_desc")),
        limit=limits,
    )
    @_query_step
    def search_sessions(self, filters: dict[str, Any], order_by: str, limit: int) -> None:
        expected = self.model.search_sessions(**filters, order_by=order_by)
        self._check_search("sessions", expected, filters, order_by, limit)

    @rule(
        filters=run_filters,
        order_by=st.sampled_from(("started_at_desc", "started_at_asc", "token_usage_desc")),
        limit=limits,
    )
    @_query_step
    def search_runs(self, filters: dict[str, Any], order_by: str, limit: int) -> None:
        expected = self.model.search_runs(**filters, order_by=order_by)
        self._check_search("runs", expected, filters, order_by, limit)

    @rule(
        filters=event_filters,
        order_by=st.sampled_from(("sequence_asc", "timestamp_asc", "timestamp_desc")),
        limit=limits,
    )
    @_query_step
    def search_events(self, filters: dict[str, Any], order_by: str, limit: int) -> None:
        expected = self.model.search_events(**filters, order_by=order_by)
        self._check_search("events", expected, filters, order_by, limit)

    def _check_search(
        self, kind: str, expected: list[Any], filters: dict[str, Any], order_by: str, limit: int
    ) -> None:
        method = f"search_{kind}"
        arguments = {**filters, "order_by": order_by, "limit": limit}
        code = _query_code(method, **arguments)
        following = f"{code}, then again with cursor=page.cursor until it is None"
        pages = []
        cursor = None
        for _ in range(len(expected) + 2):
            page = self._ask(
                "QRY-3" if cursor else "QRY-1", code, method, **arguments, cursor=cursor
            )
            pages.append(page)
            cursor = page.cursor
            if cursor is None:
                break
        got = [record for page in pages for record in getattr(page, kind)]
        if _ids(got) != _ids(expected):
            self._diagnose(kind, expected, filters, order_by, following, got)
        if cursor is not None:
            self._fail(
                "QRY-3",
                following,
                "a page without a cursor after the last match",
                f"{len(pages)} pages, each with a cursor",
            )
        for number, page in enumerate(pages, 1):
            found = getattr(page, kind)
            if len(found) > limit:
                self._fail(
                    "QRY-3",
                    following,
                    f"pages of at most {limit} records",
                    f"page {number} holds {len(found)}",
                )
            if not found and expected:
                self._fail(
                    "QRY-3",
                    following,
                    "cursor None on the page holding the last match",
                    f"page {number} is empty",
                )
            if kind == "sessions" and page.total_count != len(expected):
                self._fail(
                    "QRY-4",
                    following,
                    f"total_count {len(expected)} on every page",
                    f"{page.total_count} on page {number}",
                )
        for want, record in zip(expected, got, strict=True):
            difference = exact_difference(want, record)
            if difference:
                self._fail(
                    "QRY-7",
                    following,
                    f"the record as stored: {want!r}",
                    f"{record!r} ({difference})",
                )

    def _diagnose(
        self,
        kind: str,
        expected: list[Any],
        filters: dict[str, Any],
        order_by: str,
        following: str,
        got: list[Any],
    ) -> None:
        """Name the rule a wrong paging breaks: one page of every match shows whether the
        filters (QRY-1, QRY-6) or the order (QRY-2) are wrong; otherwise the cursor is (QRY-3)."""
        method = f"search_{kind}"
        arguments = {**filters, "order_by": order_by, "limit": ONE_PAGE}
        code = _query_code(method, **arguments)
        whole = _ids(getattr(self._ask("QRY-1", code, method, **arguments), kind))
        if sorted(whole) != sorted(_ids(expected)):
            rule_id = "QRY-1"
            if kind == "sessions":
                flipped = {**filters, "include_deleted": not filters.get("include_deleted", False)}
                other = self.model.search_sessions(**flipped, order_by=order_by)
                if sorted(whole) == sorted(_ids(other)):
                    rule_id = "QRY-6"
            self._fail(rule_id, code, sorted(_ids(expected)), f"{sorted(whole)} (sorted by id)")
        if whole != _ids(expected):
            self._fail("QRY-2", code, _ids(expected), whole)
        self._fail("QRY-3", following, _ids(expected), _ids(got))

    # -- counts, stats, summaries, export ------------------------------------------------------
    @rule(filters=event_filters)
    @_query_step
    def count_events(self, filters: dict[str, Any]) -> None:
        expected = self.model.count_events(**filters)
        code = _query_code("count_events", **filters)
        got = self._ask("QRY-4", code, "count_events", **filters)
        if got != expected or type(got) is not int:
            self._fail("QRY-4", code, expected, got)

    @rule(session_id=st.sampled_from(SESSION_IDS))
    @_query_step
    def get_session_stats(self, session_id: str) -> None:
        expected = self.model.session_stats(session_id)
        code = _query_code("get_session_stats", session_id)
        got = self._ask_session("get_session_stats", code, session_id, expected is None)
        if expected is not None and got.model_dump() != expected:
            self._fail("QRY-8", code, expected, got.model_dump())

    @rule(session_id=st.sampled_from(SESSION_IDS))
    @_query_step
    def export_session(self, session_id: str) -> None:
        expected = self.model.export_session(session_id)
        code = _query_code("export_session", session_id)
        got = self._ask_session("export_session", code, session_id, expected is None)
        if expected is None:
            return
        shown = {
            "session": got.session,
            "runs": got.runs,
            "events": got.events,
            "artifacts": got.artifacts,
        }
        for part, want in expected.items():
            records = want if isinstance(want, list) else [want]
            found = shown[part] if isinstance(want, list) else [shown[part]]
            if _ids(records) != _ids(found):
                self._fail("QRY-8", code, f"{part}: {_ids(records)}", _ids(found))
            difference = exact_difference(records, found)
            if difference:
                self._fail("QRY-7", code, f"{part} as stored", difference)

    @rule(filters=usage_filters)
    @_query_step
    def get_usage_summary(self, filters: dict[str, Any]) -> None:
        expected = self.model.usage_summary(**filters)
        code = _query_code("get_usage_summary", **filters)
        got = self._ask("QRY-9", code, "get_usage_summary", **filters).model_dump()
        if got != expected:
            self._fail("QRY-9", code, expected, got)

    @rule(
        filters=cost_filters,
        table=st.one_of(pricing_tables, pricing_tables, pricing_tables, st.none()),
    )
    @_query_step
    def get_cost_summary(self, filters: dict[str, Any], table: dict[str, Any] | None) -> None:
        expected = self.model.cost_summary(**filters, pricing_table=table)
        pricing = None if table is None else PricingTable.model_validate({"providers": table})
        code = _query_code("get_cost_summary", **filters, pricing_table=pricing)
        got = self._ask("QRY-10", code, "get_cost_summary", **filters, pricing_table=pricing)
        found = got.model_dump()
        same = (
            (found["run_count"], found["unmapped_runs"])
            == (expected["run_count"], expected["unmapped_runs"])
            and _close(expected["total_cost_usd"], found["total_cost_usd"])
            and all(
                set(found[part]) == set(expected[part])
                and all(_close(v, found[part][k]) for k, v in expected[part].items())
                for part in ("by_provider", "by_model")
            )
        )
        if not same:
            self._fail("QRY-10", code, f"{expected} (floats within a relative 1e-9)", found)

    # -- calling and failing -------------------------------------------------------------------
    def _ask(self, rule_id: str, code: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """The query's answer; a StoreError on these valid arguments breaks ``rule_id``."""
        try:
            return getattr(self.query, method)(*args, **kwargs)
        except StoreError as error:
            self._fail(rule_id, code, "an answer", f"StoreError {error}")

    def _ask_session(self, method: str, code: str, session_id: str, unknown: bool) -> Any:
        """Stats or export: an unknown session raises session_not_found (QRY-8)."""
        try:
            answer = getattr(self.query, method)(session_id)
        except StoreError as error:
            if unknown and error.code == ErrorCode.SESSION_NOT_FOUND:
                return None
            wanted = "session_not_found" if unknown else "an answer"
            self._fail("QRY-8", code, wanted, f"StoreError {error}")
        if unknown:
            self._fail("QRY-8", code, "StoreError(session_not_found)", answer)
        return answer

    def _fail(self, rule_id: str, code: str, expected: object, got: object) -> NoReturn:
        raise QueryMismatch(rule_id, code, expected, got, list(self.writes), self.step)


def replay(machine: type[QueryMachine], writes: list[Write], step: Step) -> QueryMismatch | None:
    """``writes`` then ``step`` on a fresh store: the mismatch it shows, or None."""
    state = machine()
    try:
        for method, value in writes:
            state.write(method, value)
        getattr(state, step[0])(**step[1])
    except QueryMismatch as mismatch:
        return mismatch
    except Exception:  # a candidate that breaks otherwise does not reproduce this mismatch
        return None
    finally:
        state.teardown()
    return None


def minimize(
    machine: type[QueryMachine], mismatch: QueryMismatch, seconds: float = MINIMIZE_SECONDS
) -> QueryMismatch:
    """Drop writes while the same rule still fails."""

    def same(writes: list[Write]) -> QueryMismatch | None:
        found = replay(machine, writes, mismatch.step)
        return found if found is not None and found.rule_id == mismatch.rule_id else None

    return cut_down(mismatch, lambda m: m.writes, same, seconds)


def query_machine(
    store_factory: Callable[[], Any], query_factory: Callable[[Any], Any]
) -> type[QueryMachine]:
    """:class:`QueryMachine` bound to fresh stores from ``store_factory`` and their QueryAPIs."""
    return type(
        "QueryMachine",
        (QueryMachine,),
        {
            "store_factory": staticmethod(store_factory),
            "query_factory": staticmethod(query_factory),
        },
    )


def run_query_machine(
    store_factory: Callable[[], Any],
    query_factory: Callable[[Any], Any],
    settings: Settings,
    seed: int | None = None,
    *,
    step_count: int = STEP_COUNT,
    minimize_seconds: float = MINIMIZE_SECONDS,
) -> QueryMismatch | None:
    """Run the machine; the (minimised) mismatch it found, or None. Other errors propagate."""
    machine = query_machine(store_factory, query_factory)
    if seed is not None:
        machine = hypothesis_seed(seed)(machine)
    try:
        # stop at the first mismatch: ``minimize`` follows, within a time budget
        run_state_machine_as_test(machine, settings=first_failure(settings, step_count))
    except QueryMismatch as mismatch:
        return minimize(machine, mismatch, minimize_seconds) if minimize_seconds else mismatch
    return None


__all__ = [
    "QUERY_MACHINE_RULES",
    "QueryMachine",
    "QueryMismatch",
    "minimize",
    "query_machine",
    "replay",
    "run_query_machine",
]
