"""Failing a suite test with a history's violations, the seed and the replay command."""

from __future__ import annotations

import pytest

from pytest_asm_contract._concurrency.checking import check_history
from pytest_asm_contract._concurrency.formatting import format_report
from pytest_asm_contract._concurrency.recording import History
from pytest_asm_contract._concurrency.violations import violated_rules
from pytest_asm_contract._plugin.marks import mark_violated
from pytest_asm_contract._plugin.replay import replay_command


def fail_on_violations(
    request: pytest.FixtureRequest, history: History, selector: str, *also: str, note: str = ""
) -> None:
    """Fail the test with the history's violations, if there are any.

    ``also`` names rules every violation breaks besides its own (CONC-3 for a history across
    processes); ``note`` is added at the end of the message.
    """
    violations = check_history(history)
    if not violations:
        return
    mark_violated(request.node, *also, *violated_rules(violations))
    text = format_report(history, violations, replay_command(request.config, selector))
    pytest.fail(f"{text}\n{note}" if note else text, pytrace=False)
