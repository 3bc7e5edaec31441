"""The whole contract kit against the S3 stores, through pytester, as a user would run it.

The session store runs the bundled suite on the serialized moto server (two xdist workers, each
test in a fresh prefix, the quick Hypothesis budget); the artifact stores run the bundled
artifact suite. Every MUST rule, ``shared_backend`` and ``long_poll`` must pass; only the rules of
``referential_integrity``, which the store does not declare, may be skipped.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_asm_contract._contract.rules import RULES, Scope
from tests.s3.conftest import BUCKET

#: The capability the S3 session store does not declare: its rules may be skipped.
UNDECLARED = {"referential_integrity"}


def _run(pytester: pytest.Pytester, *args: str) -> tuple[Any, dict[str, dict[str, Any]]]:
    result = pytester.runpytest_subprocess(*args, "--asm-report=report", "-p", "no:cacheprovider")
    report = json.loads((pytester.path / "report.json").read_text())
    return result, {rule["id"]: rule for rule in report["rules"]}


def test_session_store_passes_every_must_rule_and_shared_backend(
    pytester: pytest.Pytester, moto_endpoint: str
) -> None:
    result, rules = _run(
        pytester,
        "--asm-store=reference_stores.s3:S3SessionStore",
        "--asm-store-option",
        f"endpoint_url={moto_endpoint}",
        "--asm-store-option",
        f"bucket={BUCKET}",
        # The quick Hypothesis budget keeps this run short: every store call is an HTTP request
        # to moto. The default budget passes as well (run the command in docs/s3-protocol.md).
        "--asm-profile=quick",
        "-n",
        "2",
    )
    failed = {rule_id: r["reason"] for rule_id, r in rules.items() if r["status"] == "failed"}
    assert not failed, result.stdout.str()[-4000:]
    assert result.ret == 0, result.stdout.str()[-4000:]
    for catalogued in RULES:
        if catalogued.scope is not Scope.SESSION_STORE:
            continue
        rule = rules[catalogued.id]
        if catalogued.capability in UNDECLARED:
            assert rule["status"] in {"skipped", "passed"}, rule
        else:
            assert rule["status"] == "passed", f"{rule['id']}: {rule['status']} ({rule['reason']})"
    for rule_id in ("CONC-3", "FLUSH-3", "POLL-1"):
        assert rules[rule_id]["status"] == "passed", rules[rule_id]


@pytest.mark.parametrize("store", ["s3", "fs"])
def test_artifact_stores_pass_the_artifact_suite(
    pytester: pytest.Pytester, moto_endpoint: str, store: str
) -> None:
    if store == "s3":
        args = [
            "--asm-artifact-store=reference_stores.s3:S3ArtifactStore",
            f"--asm-artifact-store-option=endpoint_url={moto_endpoint}",
            f"--asm-artifact-store-option=bucket={BUCKET}",
            # Small parts, so that the suite's larger payloads go through multipart uploads.
            "--asm-artifact-store-option=multipart_threshold=512",
            "--asm-artifact-store-option=multipart_chunksize=256",
        ]
    else:
        args = ["--asm-artifact-store=reference_stores.fs:FileSystemArtifactStore"]
    result, rules = _run(pytester, *args)
    assert result.ret == 0, result.stdout.str()[-4000:]
    assert rules["ART-1"]["status"] == rules["ART-2"]["status"] == "passed"
