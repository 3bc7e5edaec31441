"""Comparing what the store returned with the model, and naming the rule a difference breaks.

Functions of the :class:`~.referee.Referee`: they read its model and the context of the last
write, and raise through it the violation of the rule a difference breaks.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pytest_asm_contract._contract.model import Event
from pytest_asm_contract._machine.constants import MUTATION_KEY
from pytest_asm_contract._machine.oracle import FOREIGN, KNOWN, NEW, REPEAT
from pytest_asm_contract._machine.referee import LastWrite, Referee
from pytest_asm_contract._machine.repro import Lazy
from pytest_asm_contract._machine.values import confusable, contains_nul, exact_difference


def context_rule(referee: Referee, default: str, subject: str | None) -> str:
    """The rule a state mismatch after the last write breaks, given what that write was."""
    last = referee.last
    if (
        subject is not None
        and subject not in last.sessions
        and any(confusable(subject, other) for other in last.sessions)
    ):
        return "DATA-3"
    if last.rejected_rule is not None:
        return last.rejected_rule
    if last.op == "delete_session":
        return "SES-4"
    if last.op == "flush":
        return last.rule
    if last.op == "mutate_returned":
        return "EVT-4" if default in ("EVT-2", "SEQ-1", "EVT-4") else "SES-1"
    return default


def compare_log(referee: Referee, sid: str, code: Lazy, expected: list[Event], found: Any) -> None:
    """Check a session's whole log: ids, then sequence numbers, then contents."""
    if not isinstance(found, list) or not all(isinstance(e, Event) for e in found):
        referee.mismatch(
            context_rule(referee, "EVT-2", sid),
            f"get_events({sid!r}) returned {found!r:.100}, not a list of Event",
            code,
            "result",
            expected,
        )
    want_ids = [e.id for e in expected]
    got_ids = [e.id for e in found]
    last = referee.last
    also: tuple[str, ...] = ()
    if want_ids != got_ids:
        extra = [i for i in got_ids if i not in want_ids]
        missing = [i for i in want_ids if i not in got_ids]
        duplicated = [i for i in got_ids if got_ids.count(i) > 1]
        if not extra and not missing and not duplicated:
            rule_id, why = "EVT-2", "the right events in the wrong order"
        elif duplicated or any(i in referee.model.by_id for i in extra):
            dup = (duplicated or [i for i in extra if i in referee.model.by_id])[0]
            kind = last.kinds.get(dup)
            filed_under = [e.session_id for e in found if e.id == dup]
            if any(f != sid and confusable(f, sid) for f in filed_under):
                rule_id = "DATA-3"  # another session's event shows up here
            elif kind == REPEAT:
                rule_id = "IDEM-3"
            else:
                rule_id = "IDEM-1"
                if last.rule == "FLUSH-4":
                    also = ("FLUSH-4",)
            why = f"event id {dup!r} stored twice (or under two sessions)"
        elif extra:
            rule_id = context_rule(referee, last.rule, sid)
            if last.op == "delete_session" and sid == last.deleted:
                rule_id = "SES-4"
            why = f"unexpected events {extra!r:.100}"
        else:
            stored_now = [i for i in missing if i in last.kinds]
            if any(i in last.removed for i in missing):
                rule_id = "SES-4"
            elif last.op == "delete_session" and last.deleted != sid:
                rule_id = "DATA-3" if confusable(sid, last.deleted or "") else "SES-4"
            elif stored_now:
                rule_id = context_rule(referee, last.rule, sid)
            else:
                rule_id = context_rule(referee, "EVT-4", sid)
            why = f"events {missing!r:.100} are missing"
        referee.mismatch(
            rule_id,
            f"get_events({sid!r}) after {last.op}: {why}; "
            f"expected ids {want_ids!r:.150}, got {got_ids!r:.150}",
            code,
            "[e.id for e in result]",
            want_ids,
            also,
        )
    want_seqs = [e.sequence_number for e in expected]
    got_seqs = [e.sequence_number for e in found]
    if want_seqs != got_seqs:
        index = next(i for i, (a, b) in enumerate(zip(want_seqs, got_seqs, strict=True)) if a != b)
        event_id = expected[index].id
        supplied = last.inputs.get(event_id)
        if is_deleted_event(last, found[index]) or continues_old_counter(
            last, sid, got_seqs[index], want_seqs[index]
        ):
            rule_id = "SES-4"
        elif supplied is not None and supplied.sequence_number == got_seqs[index]:
            rule_id = "SEQ-3"
        elif last.mixed:
            rule_id = "BATCH-4"
        elif last.rejected_rule is not None:
            rule_id = last.rejected_rule
        else:
            rule_id = "SEQ-1"
        referee.mismatch(
            rule_id,
            f"session {sid!r} has sequence numbers {got_seqs!r:.120}; "
            f"they must be {want_seqs!r:.120} (1..n, no gaps or repeats)",
            code,
            "[e.sequence_number for e in result]",
            want_seqs,
        )
    compare_contents(referee, sid, code, expected, found)


def compare_contents(
    referee: Referee,
    sid: str,
    code: Lazy,
    expected: list[Event],
    found: list[Event],
    *,
    kinds: Sequence[str] = (),
    default: str | None = None,
    offset: int = 0,
) -> None:
    """Check stored events field for field; ``kinds`` and ``default`` come from an append."""
    for position, (want, got) in enumerate(zip(expected, found, strict=True)):
        index = position + offset
        difference = exact_difference(want, got)
        if difference is None:
            continue
        kind = kinds[position] if kinds else referee.last.kinds.get(want.id)
        if isinstance(got.data, dict) and MUTATION_KEY in got.data:
            rule_id = "EVT-4"
        elif kind == NEW and is_deleted_event(referee.last, got):
            rule_id = "SES-4"
        elif kind == REPEAT:
            rule_id = "IDEM-3"
        elif kind in (KNOWN, FOREIGN):
            rule_id = "IDEM-1"
        elif default is None and referee.last.rejected_rule is not None:
            rule_id = referee.last.rejected_rule
        elif contains_nul(want):
            rule_id = "DATA-2"
        else:
            rule_id = default or "DATA-1"
        what = f"event {want.id!r} of session {sid!r} differs: {difference}"
        if want == got:
            referee.exact_mismatch(rule_id, what, code, f"result[{index}]", want)
        referee.mismatch(rule_id, what, code, f"result[{index}]", want)


def compare_appended(
    referee: Referee,
    code: Lazy,
    expected: list[Event],
    found: Any,
    kinds: Sequence[str],
    inputs: list[Any],
    op_rule: str,
    *,
    single: bool,
) -> None:
    """Check what an append returned against the model (BATCH-1, SEQ-*, IDEM-*)."""
    if single:
        if not isinstance(found, Event):
            referee.mismatch(
                op_rule,
                f"append_event_with_sequence returned {found!r:.100}, not the stored Event",
                code,
                "result",
                expected[0],
            )
        found_list = [found]
    else:
        if not isinstance(found, list) or len(found) != len(expected):
            referee.mismatch(
                "BATCH-1",
                f"append_events returned {found!r:.100}; it must "
                f"return one event per input element ({len(expected)})",
                code,
                "len(result)",
                len(expected),
            )
        if not all(isinstance(e, Event) for e in found):
            referee.mismatch(
                "BATCH-1",
                f"append_events returned {found!r:.100}, not events",
                code,
                "result",
                expected,
            )
        found_list = found
    events = [e for e in inputs if isinstance(e, Event)]
    for index, (want, got) in enumerate(zip(expected, found_list, strict=True)):
        kind = kinds[index]
        subject = "the returned event" if single else f"element {index}"
        if got.id != want.id:
            rule_id = (
                "IDEM-3"
                if kind == REPEAT
                else "IDEM-1"
                if kind in (KNOWN, FOREIGN)
                else "DATA-3"
                if confusable(got.id, want.id)
                else op_rule
            )
            referee.mismatch(
                rule_id,
                f"{subject} has id {got.id!r}, expected {want.id!r}",
                code,
                "result.id" if single else "[e.id for e in result]",
                want.id if single else [e.id for e in expected],
            )
        if kind != NEW:
            # A stored id must come back as the original, field for field (IDEM-1, IDEM-3).
            difference = exact_difference(want, got)
            if difference is not None:
                rule_id = "IDEM-3" if kind == REPEAT else "IDEM-1"
                what = (
                    f"{subject} repeats id {want.id!r} ({kind}); the store must return the "
                    f"event stored first, but {difference}"
                )
                referee.mismatch(
                    rule_id, what, code, "result" if single else f"result[{index}]", want
                )
        if got.sequence_number != want.sequence_number:
            rule_id = sequence_rule(referee, index, kinds, events, expected, found_list, op_rule)
            what = (
                f"{subject} (id {want.id!r}, {kind}) got sequence number "
                f"{got.sequence_number!r}; the contract model assigns "
                f"{want.sequence_number!r}"
            )
            if single:
                referee.mismatch(
                    rule_id, what, code, "result.sequence_number", want.sequence_number
                )
            referee.mismatch(
                rule_id,
                what,
                code,
                "[e.sequence_number for e in result]",
                [e.sequence_number for e in expected],
            )
        if single:
            compare_single(referee, code, want, got, kind)
        else:
            compare_contents(
                referee,
                want.session_id,
                code,
                [want],
                [got],
                kinds=[kind],
                default="DATA-1",
                offset=index,
            )


def compare_single(referee: Referee, code: Lazy, want: Event, got: Event, kind: str) -> None:
    """Check the event append_event_with_sequence returned, field for field."""
    difference = exact_difference(want, got)
    if difference is None:
        return
    rule_id = (
        "IDEM-1"
        if kind in (KNOWN, FOREIGN)
        else "SES-4"
        if is_deleted_event(referee.last, got)
        else "DATA-2"
        if contains_nul(want)
        else "DATA-1"
    )
    what = f"the returned event differs from what the contract model stores: {difference}"
    if want == got:
        referee.exact_mismatch(rule_id, what, code, "result", want)
    referee.mismatch(rule_id, what, code, "result", want)


def sequence_rule(
    referee: Referee,
    index: int,
    kinds: Sequence[str],
    inputs: list[Event],
    expected: list[Event],
    found: list[Event],
    op_rule: str,
) -> str:
    """The rule a wrong sequence number at ``index`` of an append's result breaks."""
    kind = kinds[index]
    want = expected[index]
    sid = want.session_id
    if kind == REPEAT:
        return "IDEM-3"
    if kind in (KNOWN, FOREIGN):
        return "IDEM-1"
    if is_deleted_event(referee.last, found[index]) or continues_old_counter(
        referee.last, sid, found[index].sequence_number, want.sequence_number
    ):
        return "SES-4"
    supplied = inputs[index].sequence_number if index < len(inputs) else None
    if supplied is not None and found[index].sequence_number == supplied:
        return "SEQ-3"
    new_numbers = [
        got.sequence_number
        for got, exp, k in zip(found, expected, kinds, strict=True)
        if k == NEW and exp.session_id == sid
    ]
    consecutive = all(
        isinstance(a, int) and isinstance(b, int) and b == a + 1
        for a, b in itertools.pairwise(new_numbers)
    )
    if not consecutive:
        return "BATCH-4" if referee.last.mixed else "BATCH-1" if op_rule == "BATCH-1" else "SEQ-1"
    return "SEQ-1"


def compare_list(
    referee: Referee,
    rule_id: str,
    op: str,
    code: Lazy,
    expected: list[Any],
    found: Any,
    projection: str,
) -> None:
    """Check a listing or filtered read: the same items, in the same order, field for field."""

    def key(item: Any) -> Any:
        return item.id if hasattr(item, "id") else item

    if not isinstance(found, list):
        referee.mismatch(
            rule_id, f"{op} returned {found!r:.100}, not a list", code, "result", expected
        )
    want_ids = [key(i) for i in expected]
    got_ids = [key(i) for i in found]
    if op == "get_events":
        want_key = [(e.id, e.sequence_number) for e in expected]
        got_key = [(getattr(e, "id", None), getattr(e, "sequence_number", None)) for e in found]
        if want_key != got_key:
            referee.mismatch(
                rule_id,
                f"{op} returned {got_key!r:.150}, expected {want_key!r:.150}",
                code,
                projection,
                want_key,
            )
    elif want_ids != got_ids:
        referee.mismatch(
            rule_id,
            f"{op} returned ids {got_ids!r:.150}, expected {want_ids!r:.150}",
            code,
            projection,
            want_ids,
        )
    for index, (want, got) in enumerate(zip(expected, found, strict=True)):
        difference = exact_difference(want, got)
        if difference is not None:
            what = f"{op} item {index} differs: {difference}"
            if want == got:
                referee.exact_mismatch(rule_id, what, code, f"result[{index}]", want)
            referee.mismatch(rule_id, what, code, f"result[{index}]", want)


def is_deleted_event(last: LastWrite, got: Any) -> bool:
    """Whether the store handed back an event that a delete_session removed."""
    old = last.removed.get(getattr(got, "id", None))  # type: ignore[arg-type]
    return old is not None and exact_difference(old, got) is None


def continues_old_counter(last: LastWrite, sid: str, got: object, want: object) -> bool:
    """Whether ``got`` is the number a counter not reset by the last delete would give."""
    old = last.restarted.get(sid)
    return (
        old is not None and isinstance(got, int) and isinstance(want, int) and (got == old + want)
    )
