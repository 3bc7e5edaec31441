"""The Maintenance port as a Hypothesis state machine, checked against
:class:`~.maintenance_model.MaintenanceModel` on a fixed clock.

Writes go through the session store (sessions whose ages straddle every cutoff, appends of new,
stored and pruned ids, deletes) and, when one is configured, the artifact registry; maintenance
steps soft-delete, hard-delete, prune, execute and check health with random policies. After
every step the machine compares what each call returned and the whole state: every session,
every session's events with their numbers, every counter and the artifact metadata. The first
mismatch raises :class:`MaintenanceMismatch` naming the MNT rule of the step that caused it;
:func:`run_maintenance_machine` then drops steps while the same rule still fails and prints the
rest as Python.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NoReturn

from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from pytest_asm_contract._contract.maintenance import RetentionPolicy
from pytest_asm_contract._contract.model import Event, EventType, Session, SessionStatus
from pytest_asm_contract._contract.port import close_store
from pytest_asm_contract._contract.query import ArtifactMeta
from pytest_asm_contract._contract.rules import get_rule
from pytest_asm_contract._machine.cutting import cut_down, first_failure
from pytest_asm_contract._machine.maintenance_model import MaintenanceModel
from pytest_asm_contract._machine.repro import call
from pytest_asm_contract._machine.values import exact_difference

MAINTENANCE_MACHINE_RULES = ("MNT-1", "MNT-2", "MNT-3", "MNT-4", "MNT-5", "MNT-6")
STEP_COUNT = 30
MINIMIZE_SECONDS = 10.0
NOW = datetime(2031, 6, 1, tzinfo=UTC)
SESSION_IDS = ("s1", "s2", "s3", "s4")
#: Ages that straddle the policies' day counts, a microsecond either side of the cutoffs.
AGES = tuple(
    NOW - timedelta(days=days) + timedelta(microseconds=shift)
    for days in (0, 1, 30, 90)
    for shift in (1, 0, -1)
)
STATUSES = (
    SessionStatus.ACTIVE,
    SessionStatus.PAUSED,
    SessionStatus.COMPLETED,
    SessionStatus.FAILED,
    SessionStatus.PENDING,
)
TYPES = (
    EventType.MESSAGE_SENT,
    EventType.MESSAGE_STREAMED,
    EventType.TOKEN_USAGE_UPDATED,
    EventType.RUN_STARTED,
    EventType.RUN_COMPLETED,
)
#: Which rule a mismatch after each step breaks.
STEP_RULES = {
    "soft_delete_expired_sessions": "MNT-1",
    "hard_delete_expired_sessions": "MNT-2",
    "prune_session_events": "MNT-3",
    "execute": "MNT-4",
    "clean_orphaned_artifacts": "MNT-5",
    "health_check": "MNT-6",
}
#: One step: which object, its method, positional and keyword arguments.
Step = tuple[str, str, tuple[Any, ...], dict[str, Any]]

sessions = st.builds(
    Session,
    id=st.sampled_from(SESSION_IDS),
    agent_id=st.just("a1"),
    status=st.sampled_from(STATUSES),
    tags=st.sampled_from(([], ["pinned"], ["keep", "x"], ["x"])),
    created_at=st.sampled_from(AGES),
    updated_at=st.sampled_from(AGES),
    deleted_at=st.one_of(st.none(), st.none(), st.sampled_from(AGES)),
)
days = st.sampled_from((None, 1, 30, 90))
policies = st.builds(
    RetentionPolicy,
    max_session_age_days=days,
    max_completed_session_age_days=days,
    max_events_per_session=st.sampled_from((None, 1, 2, 3, 5)),
    hard_delete_after_days=days,
    exempt_statuses=st.lists(st.sampled_from(STATUSES), max_size=2, unique=True),
    exempt_tags=st.sampled_from(([], ["pinned"], ["keep"])),
    prune_event_types_first=st.lists(st.sampled_from(TYPES), max_size=3, unique=True),
    batch_size=st.sampled_from((1, 2, 100)),
)


class MaintenanceMismatch(AssertionError):
    """The store or its Maintenance object disagreed with the model after ``steps``."""

    def __init__(self, rule_id: str, what: str, steps: list[Step]) -> None:
        super().__init__(rule_id)
        self.rule_id, self.what, self.steps = rule_id, what, steps

    def __str__(self) -> str:
        code = [_code(step) for step in self.steps]
        lines = "\n".join(f"    {line}" for c in code for line in c.splitlines())
        return (
            f"{self.rule_id} violated: {get_rule(self.rule_id).statement}\n{self.what}\n"
            f"after these {len(self.steps)} calls on a fresh store (`maintenance` and "
            f"`registry` are built from it; now = {NOW!r}):\n{lines}"
        )


def _code(step: Step) -> str:
    target, method, args, kwargs = step
    return target + call(method, *args, **kwargs).removeprefix("store")


class MaintenanceMachine(RuleBasedStateMachine):
    store_factory: ClassVar[Callable[[], Any]]
    maintenance_factory: ClassVar[Callable[[Any], Any]]
    registry_factory: ClassVar[Callable[[Any], Any] | None]

    def __init__(self) -> None:
        super().__init__()
        self.store = type(self).store_factory()
        self.objects = {
            "store": self.store,
            "maintenance": type(self).maintenance_factory(self.store),
        }
        registry_factory = type(self).registry_factory
        if registry_factory is not None:
            self.objects["registry"] = registry_factory(self.store)
        self.model = MaintenanceModel()
        self.steps: list[Step] = []
        self.fresh = 0
        self.pruned: dict[str, set[str]] = {}  # session -> ids pruned from it (free again)
        self.touched: dict[str, str] = {}  # session -> the last maintenance rule that changed it
        self.artifact_sessions: dict[str, str] = {}  # artifact id -> its session

    def teardown(self) -> None:
        close_store(self.store)

    # -- running one step -------------------------------------------------------------------------
    def do(self, target: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the store, registry or maintenance object, recorded for the reproduction."""
        self.steps.append((target, method, args, kwargs))
        try:
            return getattr(self.objects[target], method)(*args, **kwargs)
        except StoreError as error:
            self._fail(self._rule_of(method, args), f"{method} raised {error}")

    def _rule_of(self, method: str, args: tuple[Any, ...]) -> str:
        if method in STEP_RULES:
            return STEP_RULES[method]
        sessions = {e.session_id for e in args[0]} if method == "append_events" else set()
        # an append after maintenance changed the session shows what that step did to it; on a
        # session no maintenance step changed, the store's own numbering is at fault
        return next((self.touched[s] for s in sorted(sessions) if s in self.touched), "SEQ-1")

    def _fail(self, rule_id: str, what: str) -> NoReturn:
        raise MaintenanceMismatch(rule_id, what, list(self.steps))

    def expect(self, method: str, args: tuple[Any, ...], expected: object, got: object) -> None:
        if exact_difference(expected, got) is not None:
            self._fail(
                self._rule_of(method, args), f"{method} returned {got!r}, expected {expected!r}"
            )

    def compare_state(
        self, method: str, args: tuple[Any, ...] = (), steps: dict[str, str] | None = None
    ) -> None:
        """The whole state against the model, blamed on the step just taken (for ``execute``,
        ``steps`` names the rule of the step that changed each session)."""
        for sid in (*SESSION_IDS, "gone"):
            rule_id = (steps or {}).get(sid) or self._rule_of(method, args)
            try:
                session: Session | None = self.store.get_session(sid)
            except StoreError as error:
                if error.code is not ErrorCode.SESSION_NOT_FOUND:
                    self._fail(rule_id, f"get_session({sid!r}) raised {error}")
                session = None
            difference = exact_difference(self.model.sessions.get(sid), session)
            if difference:
                self._fail(rule_id, f"after {method}, get_session({sid!r}): {difference}")
            got = [(e.id, e.sequence_number) for e in self.store.get_events(sid)]
            wanted = [(e.id, e.sequence_number) for e in self.model.logs.get(sid, [])]
            if got != wanted:
                self._fail(
                    rule_id,
                    f"after {method}, get_events({sid!r}) holds (id, number) "
                    f"{got}, expected {wanted}",
                )
            latest = self.store.get_latest_sequence(sid)
            if latest != self.model.counters.get(sid, 0):
                self._fail(
                    rule_id,
                    f"after {method}, get_latest_sequence({sid!r}) is {latest}, "
                    f"expected {self.model.counters.get(sid, 0)}",
                )
            if "registry" in self.objects:
                metas = [m.id for m in self.objects["registry"].list_by_session(sid)]
                expected = sorted(
                    (m.created_at, m.id)
                    for m in self.model.artifacts.values()
                    if m.session_id == sid
                )
                if metas != [key for _, key in expected]:
                    self._fail(
                        rule_id,
                        f"after {method}, list_by_session({sid!r}) is {metas}, "
                        f"expected {[key for _, key in expected]}",
                    )

    # -- the rules draw; the methods named after the port's calls run and judge them -----------
    @rule(session=sessions)
    def draw_session(self, session: Session) -> None:
        self.save_session(session)

    @rule(
        session_id=st.sampled_from(SESSION_IDS),
        kinds=st.lists(
            st.tuples(st.sampled_from(TYPES), st.integers(0, 5)), min_size=1, max_size=4
        ),
    )
    def draw_append(self, session_id: str, kinds: list[tuple[EventType, int]]) -> None:
        """New ids mostly; now and then an id stored in the session (IDEM-1) or one pruned from
        it (stored anew, MNT-3)."""
        if session_id not in self.model.sessions and "referential_integrity" in getattr(
            self.store, "capabilities", ()
        ):
            return
        batch: list[Event] = []
        stored = [e.id for e in self.model.logs.get(session_id, [])]
        freed = sorted(self.pruned.get(session_id, set()) - set(stored))
        for kind, pick in kinds:
            if pick == 0 and freed:
                event_id = freed.pop()
            elif pick == 1 and stored:
                event_id = stored[-1]
            else:
                self.fresh += 1
                event_id = f"e{self.fresh}"
            if event_id not in (e.id for e in batch):
                batch.append(Event(id=event_id, session_id=session_id, type=kind, timestamp=NOW))
        self.append_events(batch)

    @rule(session_id=st.sampled_from(SESSION_IDS))
    def draw_delete(self, session_id: str) -> None:
        self.delete_session(session_id)

    @rule(session_id=st.sampled_from((*SESSION_IDS, "gone")), created=st.sampled_from(AGES))
    def draw_artifact(self, session_id: str, created: datetime) -> None:
        if "registry" in self.objects:
            self.fresh += 1
            key = f"art{self.fresh}"
            self.register(ArtifactMeta(id=key, session_id=session_id, key=key, created_at=created))

    @rule(policy=policies)
    def draw_soft_delete(self, policy: RetentionPolicy) -> None:
        self.soft_delete_expired_sessions(policy)

    @rule(policy=policies)
    def draw_hard_delete(self, policy: RetentionPolicy) -> None:
        self.hard_delete_expired_sessions(policy)

    @rule(session_id=st.sampled_from(SESSION_IDS), policy=policies)
    def draw_prune(self, session_id: str, policy: RetentionPolicy) -> None:
        self.prune_session_events(session_id, policy)

    @rule(policy=policies)
    def draw_execute(self, policy: RetentionPolicy) -> None:
        self.execute(policy)

    @rule()
    def draw_cleaning(self) -> None:
        if "registry" in self.objects:
            self.clean_orphaned_artifacts()

    @rule()
    def draw_health_check(self) -> None:
        self.health_check()

    # -- the calls, judged ------------------------------------------------------------------------
    def save_session(self, session: Session) -> None:
        self.do("store", "save_session", session)
        self.model.save_session(session)
        self.compare_state("save_session")

    def append_events(self, batch: list[Event]) -> None:
        args = (batch,)
        got = self.do("store", "append_events", batch)
        expected = self.model.append_events(batch)
        self.expect(
            "append_events",
            args,
            [(e.id, e.sequence_number) for e in expected],
            [(e.id, e.sequence_number) for e in got],
        )
        self.compare_state("append_events", args)

    def delete_session(self, session_id: str) -> None:
        self.do("store", "delete_session", session_id)
        self.model.delete_session(session_id)
        self.touched.pop(session_id, None)
        self.compare_state("delete_session")

    def register(self, meta: ArtifactMeta) -> None:
        self.artifact_sessions[meta.id] = meta.session_id
        self.do("registry", "register", meta)
        self.model.register(meta)
        self.compare_state("register")

    def soft_delete_expired_sessions(self, policy: RetentionPolicy) -> None:
        expected = self.model.soft_delete(policy, NOW)
        self._maintain("soft_delete_expired_sessions", expected, policy, now=NOW)

    def hard_delete_expired_sessions(self, policy: RetentionPolicy) -> None:
        held = set(self.model.sessions)
        expected = self.model.hard_delete(policy, NOW)
        for sid in held - set(self.model.sessions):
            self.touched[sid] = "MNT-2"
        self._maintain("hard_delete_expired_sessions", expected, policy, now=NOW)

    def prune_session_events(self, session_id: str, policy: RetentionPolicy) -> None:
        before = {e.id for e in self.model.logs.get(session_id, [])}
        expected = self.model.prune(session_id, policy)
        self._note_pruned(session_id, before)
        self._maintain("prune_session_events", expected, session_id, policy)

    def execute(self, policy: RetentionPolicy) -> None:
        model = self.model
        held = {sid: s.deleted_at for sid, s in model.sessions.items()}
        before = {sid: {e.id for e in log} for sid, log in model.logs.items()}
        artifacts = set(model.artifacts)
        counts = model.execute(policy, NOW)
        # a difference in a session's state is blamed on the step of execute that changed it
        steps: dict[str, str] = {}
        for sid, deleted_at in held.items():
            if sid not in model.sessions:
                steps[sid] = self.touched[sid] = "MNT-2"
            elif model.sessions[sid].deleted_at != deleted_at:
                steps[sid] = "MNT-1"
        for sid, ids in before.items():
            if self._note_pruned(sid, ids):
                steps[sid] = "MNT-3"
        for key in artifacts - set(model.artifacts):
            steps.setdefault(self.artifact_sessions[key], "MNT-5")
        report = self.do("maintenance", "execute", policy, now=NOW)
        got: tuple[Any, ...] = (
            report.sessions_soft_deleted,
            report.sessions_hard_deleted,
            report.events_pruned,
            report.errors,
        )
        wanted: tuple[Any, ...] = (counts.soft, counts.hard, counts.pruned, [])
        if "registry" in self.objects:
            got, wanted = (*got, report.artifacts_cleaned), (*wanted, counts.artifacts)
        self.expect("execute", (), wanted, got)
        self.compare_state("execute", steps=steps)

    def clean_orphaned_artifacts(self) -> None:
        self._maintain("clean_orphaned_artifacts", self.model.clean_orphaned_artifacts())

    def health_check(self) -> None:
        self._maintain("health_check", [])

    def _note_pruned(self, session_id: str, before: set[str]) -> bool:
        """Remember the ids pruned from a session (free to append again); whether there were."""
        gone = before - {e.id for e in self.model.logs.get(session_id, [])}
        if gone and session_id in self.model.logs:
            self.pruned.setdefault(session_id, set()).update(gone)
            self.touched[session_id] = "MNT-3"
            return True
        return False

    def _maintain(self, method: str, expected: object, *args: Any, **kwargs: Any) -> None:
        got = self.do("maintenance", method, *args, **kwargs)
        self.expect(method, args, expected, got)
        self.compare_state(method)


def maintenance_machine(
    store_factory: Callable[[], Any],
    maintenance_factory: Callable[[Any], Any],
    registry_factory: Callable[[Any], Any] | None,
) -> type[MaintenanceMachine]:
    return type(
        "MaintenanceMachine",
        (MaintenanceMachine,),
        {
            "store_factory": staticmethod(store_factory),
            "maintenance_factory": staticmethod(maintenance_factory),
            "registry_factory": None
            if registry_factory is None
            else staticmethod(registry_factory),
        },
    )


def replay(machine: type[MaintenanceMachine], steps: list[Step]) -> MaintenanceMismatch | None:
    """``steps`` on a fresh store through the machine's own rules: the mismatch, or None."""
    state = machine()
    try:
        for step in steps:
            _redo(state, step)
    except MaintenanceMismatch as mismatch:
        return mismatch
    except Exception:  # a candidate that breaks otherwise does not reproduce the mismatch
        return None
    finally:
        state.teardown()
    return None


def _redo(state: MaintenanceMachine, step: Step) -> None:
    """One recorded call again, through the machine's judged method of the same name."""
    _, method, args, _ = step
    getattr(state, method)(*args)


def minimize(
    machine: type[MaintenanceMachine], mismatch: MaintenanceMismatch, seconds: float
) -> MaintenanceMismatch:
    """Drop steps while the same rule still fails; the failing step itself stays."""

    def same(steps: list[Step]) -> MaintenanceMismatch | None:
        found = replay(machine, steps)
        return found if found is not None and found.rule_id == mismatch.rule_id else None

    return cut_down(mismatch, lambda m: m.steps, same, seconds, keep=1)


def run_maintenance_machine(
    store_factory: Callable[[], Any],
    maintenance_factory: Callable[[Any], Any],
    registry_factory: Callable[[Any], Any] | None,
    settings: Settings,
    seed: int | None = None,
    *,
    step_count: int = STEP_COUNT,
    minimize_seconds: float = MINIMIZE_SECONDS,
) -> MaintenanceMismatch | None:
    """Run the machine; the (minimised) mismatch it found, or None. Other errors propagate."""
    machine = maintenance_machine(store_factory, maintenance_factory, registry_factory)
    if seed is not None:
        machine = hypothesis_seed(seed)(machine)
    try:
        run_state_machine_as_test(machine, settings=first_failure(settings, step_count))
    except MaintenanceMismatch as mismatch:
        return minimize(machine, mismatch, minimize_seconds) if minimize_seconds else mismatch
    return None


__all__ = [
    "MAINTENANCE_MACHINE_RULES",
    "MaintenanceMachine",
    "MaintenanceMismatch",
    "run_maintenance_machine",
]
