"""Render docs/rules.md from the rule catalogue: ``python scripts/rules_doc.py --write``."""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_asm_contract._contract.rules import CAPABILITIES, GROUPS, RULES, Scope

HEADER = """\
# Rules reference

Generated from `pytest_asm_contract/_contract/rules.py` by `python scripts/rules_doc.py --write`;
do not edit by hand (a test fails when this file is stale).

Every rule has an ID used in test ids (`test_...[SEQ-1]`), JUnit properties (`asm_rules`),
`--asm-rules` selection and the conformance report. MUST rules hold for every store; rules with a
capability hold only for stores that declare it in their `capabilities` attribute.
"""


def render() -> str:
    lines = [HEADER, "## Capabilities", ""]
    lines += [f"- `{name}`: {text}." for name, text in CAPABILITIES.items()]
    for group, title in GROUPS.items():
        lines += ["", f"## {group}: {title}", ""]
        for rule in (r for r in RULES if r.group == group):
            level = f"{rule.level.value}" + (
                f", capability `{rule.capability}`" if rule.capability else ""
            )
            checked = {
                Scope.SESSION_STORE: "the bundled suite (`--asm-store`)",
                Scope.ARTIFACT_STORE: "the artifact suite (`--asm-artifact-store`)",
                Scope.PACKAGE: "the project's tests of its own modules",
                Scope.QUERY_API: "the bundled suite with a QueryAPI (`--asm-query`)",
                Scope.ARTIFACT_REGISTRY: (
                    "the bundled suite with an artifact registry (`--asm-artifact-registry`)"
                ),
                Scope.MAINTENANCE: (
                    "the bundled suite with a Maintenance object (`--asm-maintenance`)"
                ),
                Scope.ASYNC_STORE: (
                    "the bundled suite (`--asm-store`) when the store's operations are async def"
                ),
            }[rule.scope]
            lines += [f"### {rule.id} ({level})", "", rule.statement, "", f"Checked by {checked}."]
            if rule.hints:
                lines += ["", "Likely mistakes:", ""]
                lines += [f"- {hint}" for hint in rule.hints]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, nargs="?", const=Path("docs/rules.md"))
    args = parser.parse_args()
    if args.write:
        args.write.write_text(render())
    else:
        print(render(), end="")


if __name__ == "__main__":
    main()
