"""What the machine exercised: probes that name the rules they reach, and their counts.

A run that never reached a required probe (for example because the store rejected every
batch) can fail instead of passing vacuously.
"""

from __future__ import annotations

import collections
import dataclasses
import time

from pytest_asm_contract._machine.constants import STATEFUL_RULES


@dataclasses.dataclass(frozen=True)
class Probe:
    """Something the machine should exercise; ``required`` ones must happen for a run to count."""

    name: str
    rules: tuple[str, ...]
    required: bool = True


PROBES: tuple[Probe, ...] = (
    Probe("session saved", ("SES-1",)),
    Probe("session replaced by a new save", ("SES-1", "IDEM-2")),
    Probe("unknown session read", ("SES-2",), required=False),
    Probe("sessions listed with filters or paging", ("SES-3",)),
    Probe("invalid list argument rejected", ("SES-3", "RUN-2")),
    Probe("soft-deleted session listed", ("SES-5",), required=False),
    Probe("session with runs or events deleted", ("SES-4",)),
    Probe("append after delete restarted at 1", ("SES-4",)),
    Probe("run saved", ("RUN-1",)),
    Probe("runs listed with filters or paging", ("RUN-2",)),
    Probe("active run found", ("RUN-3",)),
    Probe("append_event stored an event", ("EVT-1",)),
    Probe("append_event_with_sequence stored an event", ("SEQ-1",)),
    Probe("invalid single event rejected", ("EVT-1", "SEQ-1")),
    Probe("events read with filters", ("EVT-3",)),
    Probe("invalid event filter rejected", ("EVT-3",)),
    Probe("caller mutated a returned object", ("EVT-4",)),
    Probe("caller-supplied sequence_number ignored", ("SEQ-3",)),
    Probe("latest sequence of a session with events read", ("SEQ-2",)),
    Probe("appends to two sessions", ("SEQ-4",)),
    Probe("stored id appended again (same session)", ("IDEM-1",)),
    Probe("id of another session appended", ("IDEM-1",), required=False),
    Probe("repeated id inside a batch", ("IDEM-3",)),
    Probe("batch stored new events", ("BATCH-1",)),
    Probe("empty batch", ("BATCH-2",)),
    Probe("invalid batch rejected", ("BATCH-3",)),
    Probe("batch mixing sessions", ("BATCH-4",)),
    Probe("flush stored", ("FLUSH-1",)),
    Probe("invalid flush rejected", ("FLUSH-2",)),
    Probe("identical flush repeated", ("FLUSH-4",)),
    Probe("pipeline run finished (running, batches, flush)", ("BATCH-1", "FLUSH-1", "IDEM-1")),
    Probe("value with a NUL character written", ("DATA-2",), required=False),
    Probe("confusable ids in one example", ("DATA-3",), required=False),
)


class Coverage:
    """Counts of what the machine exercised over all examples of a run (checks that passed)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        #: (operation, "ok" | "rejected") -> calls the machine judged, outside the comparisons.
        self.operations: collections.Counter[tuple[str, str]] = collections.Counter()
        self.examples = 0
        self.rounds = 0
        self.steps = 0
        self.calls = 0
        self.examples_before_violation: int | None = None
        self.first_violation_at: float | None = None
        self.seconds_to_violation: float | None = None
        self.cpu_seconds_to_violation: float | None = None
        self.started_at = time.monotonic()
        self.cpu_started_at = time.process_time()
        self.shrink_log: list[tuple[float, int]] = []

    def hit(self, name: str, count: int = 1) -> None:
        self.counts[name] += count

    def unexercised(self) -> list[Probe]:
        """Required probes that never happened."""
        return [p for p in PROBES if p.required and not self.counts[p.name]]

    def rule_counts(self) -> dict[str, int]:
        totals: dict[str, int] = dict.fromkeys(STATEFUL_RULES, 0)
        for probe in PROBES:
            for rule_id in probe.rules:
                totals[rule_id] += self.counts[probe.name]
        return totals

    def table(self) -> str:
        """A plain-text table of every probe with its count and rules."""
        width = max(len(p.name) for p in PROBES)
        lines = [
            f"{self.examples} examples in {self.rounds} round(s), {self.steps} steps, "
            f"{self.calls} store calls",
            f"{'exercised':<{width}}  {'count':>7}  rules",
        ]
        for probe in PROBES:
            count = self.counts[probe.name]
            flag = "" if count or not probe.required else "  <-- never"
            lines.append(f"{probe.name:<{width}}  {count:>7}  {', '.join(probe.rules)}{flag}")
        names = sorted({op for op, _ in self.operations})
        if names:
            op_width = max(len(n) for n in names)
            lines += ["", f"{'operation':<{op_width}}  {'ok':>7}  {'rejected':>8}"]
            for name in names:
                ok, rejected = self.operations[name, "ok"], self.operations[name, "rejected"]
                lines.append(f"{name:<{op_width}}  {ok:>7}  {rejected:>8}")
        return "\n".join(lines)
