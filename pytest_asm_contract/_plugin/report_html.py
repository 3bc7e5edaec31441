"""HTML views of conformance reports: one store's rule matrix, and stores side by side.

Both work from the report's JSON form, so saved reports can be rendered and compared later.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from pytest_asm_contract._contract.rules import GROUPS

STYLE = """
:root { --pass: #2e7d32; --fail: #c62828; --skip: #f9a825; --none: #9e9e9e; --line: #d9d9d9; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       padding: 0 2em; max-width: 78em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid var(--line);
     padding-bottom: 0.2em; }
h3 { font-size: 1em; margin: 1.6em 0 0.3em; }
code, pre, .cell { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
.meta { color: #555; margin: 0.2em 0 1em; }
.meta code { color: #222; }
.totals { display: flex; flex-wrap: wrap; gap: 8px; margin: 0.8em 0 1.2em; }
.total { padding: 6px 12px; border-radius: 6px; color: #fff; font-weight: 600; }
.total b { font-size: 1.3em; margin-right: 4px; }
.matrix { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px;
          align-items: center; }
.group { font-weight: 600; white-space: nowrap; }
.group small { font-weight: normal; color: #666; margin-left: 6px; }
.cells { display: flex; flex-wrap: wrap; gap: 4px; }
.cell { display: inline-block; padding: 3px 8px; border-radius: 4px; font-size: 12px;
        color: #fff; text-decoration: none; white-space: nowrap; }
a.cell:hover { outline: 2px solid #222; }
.passed { background: var(--pass); } .failed { background: var(--fail); }
.skipped { background: var(--skip); color: #222; } .not_run { background: var(--none); }
table { border-collapse: collapse; width: 100%; }
th { text-align: left; background: #f3f3f3; }
td, th { border: 1px solid var(--line); padding: 5px 8px; vertical-align: middle; }
td.rule { white-space: nowrap; font-weight: 600; }
td.level { white-space: nowrap; color: #555; font-size: 12px; }
tr.row-not_run td { color: #777; }
tr.row-failed td.rule { color: var(--fail); }
.reason { overflow-wrap: anywhere; }
.failure { border-left: 4px solid var(--fail); padding-left: 12px; margin-top: 1.5em; }
.failure h3 { margin-top: 0; }
.failure .node { font-size: 12px; color: #555; overflow-wrap: anywhere; }
pre { background: #f6f6f6; border: 1px solid var(--line); border-radius: 4px; padding: 0.8em;
      overflow: auto; max-height: 30em; font-size: 12px; line-height: 1.35; }
.legend .cell { margin-right: 6px; }
.compare { table-layout: fixed; }
.compare th { font-size: 12px; font-weight: normal; overflow-wrap: anywhere; }
.compare th:first-child { width: 7em; font-weight: 600; }
.compare td { text-align: center; } .compare td.rule { text-align: left; }
"""

STATUSES = ("passed", "failed", "skipped", "not_run")
REASON_LIMIT = 240


def _label(status: str) -> str:
    return status.replace("_", " ")


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            *body,
            "</body></html>",
        ]
    )


def _legend() -> str:
    cells = "".join(f'<span class="cell {s}">{_label(s)}</span>' for s in STATUSES)
    return f'<p class="legend">{cells}</p>'


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    more = len(lines) > 1 or len(line) > REASON_LIMIT
    return line[:REASON_LIMIT] + (" ..." if more else "")


def render_report(data: dict[str, Any]) -> str:
    """The rule matrix (groups x rules, coloured by status) and the details of every failure."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in data["rules"]:
        groups.setdefault(rule["group"], []).append(rule)
    totals = "".join(
        f'<span class="total {status}" title="rules {_label(status)}"><b>{count}</b>'
        f"{_label(status)}</span>"
        for status, count in data["summary"].items()
    )
    body = [
        "<h1>ASM contract conformance</h1>",
        f'<p class="meta">Store <code>{escape(data["store"])}</code>; kit '
        f"{escape(data['kit_version'])}; profile {escape(data['profile'])}; seed {data['seed']}."
        "</p>",
        f'<div class="totals">{totals}</div>',
        _legend(),
        '<div class="matrix">',
    ]
    for group, rules in groups.items():
        cells = "".join(
            f'<a class="cell {r["status"]}" href="#{r["id"]}" '
            f'title="{escape(r["status"] + ": " + (r["reason"] or r["statement"]))}">'
            f"{escape(r['id'])}</a>"
            for r in rules
        )
        title = GROUPS.get(group, "")
        body.append(
            f'<div class="group">{escape(group)}<small>{escape(title)}</small></div>'
            f'<div class="cells">{cells}</div>'
        )
    failures = [(r, t) for r in data["rules"] for t in r["tests"] if t["outcome"] == "failed"]
    first_failure: dict[str, int] = {}
    for index, (rule, _test) in enumerate(failures):
        first_failure.setdefault(rule["id"], index)
    body.append(
        "</div><h2>Rules</h2><table><tr><th>rule</th><th>level</th><th>status</th>"
        "<th>reason</th></tr>"
    )
    for rule in data["rules"]:
        level = rule["level"] + (f" ({rule['capability']})" if rule.get("capability") else "")
        reason = escape(_first_line(rule["reason"] or ""))
        if rule["id"] in first_failure:
            reason += f' <a href="#failure-{first_failure[rule["id"]]}">details</a>'
        body.append(
            f'<tr id="{rule["id"]}" class="row-{rule["status"]}">'
            f'<td class="rule" title="{escape(rule["statement"])}">{escape(rule["id"])}</td>'
            f'<td class="level">{escape(level)}</td>'
            f'<td><span class="cell {rule["status"]}">{_label(rule["status"])}</span></td>'
            f'<td class="reason">{reason}</td></tr>'
        )
    body.append("</table>")
    if failures:
        body.append("<h2>Failures</h2>")
    for index, (rule, test) in enumerate(failures):
        body += [
            f'<div class="failure" id="failure-{index}">',
            f"<h3>{escape(rule['id'])}: {escape(rule['statement'])}</h3>",
            f'<div class="node"><code>{escape(test["nodeid"])}</code></div>',
            f"<pre>{escape(test.get('details') or test['message'])}</pre>",
            "</div>",
        ]
    return _page(f"ASM conformance: {data['store']}", body)


def _comparison_rows(reports: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    statuses = [{r["id"]: r["status"] for r in report["rules"]} for report in reports]
    rule_ids = [r["id"] for r in reports[0]["rules"]]
    return [(rule_id, [s.get(rule_id, "not_run") for s in statuses]) for rule_id in rule_ids]


def render_comparison_markdown(reports: Sequence[dict[str, Any]]) -> str:
    stores = [f"`{r['store']}`" for r in reports]
    lines = ["| rule | " + " | ".join(stores) + " |", "|---" * (len(stores) + 1) + "|"]
    marks = {"passed": "pass", "failed": "**FAIL**", "skipped": "skip", "not_run": "-"}
    for rule_id, row in _comparison_rows(reports):
        lines.append(f"| {rule_id} | " + " | ".join(marks[s] for s in row) + " |")
    return "\n".join(lines) + "\n"


def render_comparison_html(reports: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th><code>{escape(r['store'])}</code></th>" for r in reports)
    body = [
        "<h1>ASM contract conformance by store</h1>",
        _legend(),
        f'<table class="compare"><tr><th>rule</th>{head}</tr>',
    ]
    for rule_id, row in _comparison_rows(reports):
        cells = "".join(f'<td><span class="cell {s}">{_label(s)}</span></td>' for s in row)
        body.append(f'<tr><td class="rule">{escape(rule_id)}</td>{cells}</tr>')
    body.append("</table>")
    return _page("ASM conformance by store", body)
