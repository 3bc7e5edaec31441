"""The whole contract kit against the S3 stores, through pytester, as a user would run it.

The session store runs the bundled suite on the serialized moto server (two xdist workers, each
test in a fresh prefix, the quick Hypothesis budget); the artifact stores run the bundled
artifact suite. Every MUST rule, ``shared_backend`` and ``long_poll`` must pass; only the rules of
``referential_integrity``, which the store does not declare, may be skipped.
"""

from __future__ import annotations

import pytest

from pytest_asm_contract import Scope
from tests.stores.s3.conftest import BUCKET
from tests.verdicts import may_skip_for, run_kit


@pytest.mark.slow
def test_session_store_passes_every_must_rule_and_shared_backend(
    pytester: pytest.Pytester, moto_endpoint: str
) -> None:
    options = {"endpoint_url": moto_endpoint, "bucket": BUCKET}
    result, verdicts = run_kit(
        pytester,
        "--asm-store=reference_stores.s3:S3SessionStore",
        *(f"--asm-store-option={key}={value}" for key, value in options.items()),
        # The quick Hypothesis budget keeps this run short: every store call is an HTTP request
        # to moto. The default budget passes as well (run the command in docs/s3-protocol.md).
        "--asm-profile=quick",
        "-n",
        "2",
        subprocess=True,
    )
    may_skip = may_skip_for("reference_stores.s3:S3SessionStore", **options)
    wrong = verdicts.unexpected(Scope.SESSION_STORE, may_skip=may_skip)
    assert not wrong, f"{wrong}\n{result.stdout.str()[-4000:]}"
    assert result.ret == 0, result.stdout.str()[-4000:]
    for rule_id in ("CONC-3", "FLUSH-3", "POLL-1"):
        assert verdicts.status(rule_id) == "passed", verdicts.rules[rule_id]


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
    result, verdicts = run_kit(pytester, *args, subprocess=True)
    assert result.ret == 0, result.stdout.str()[-4000:]
    assert not verdicts.unexpected(Scope.ARTIFACT_STORE)
