"""Store options: one parser (``reference_stores._options``) for every reference store.

``--asm-store-option KEY=VALUE`` hands the stores strings, Python callers real values; both must
be read the same way by every store, and a bad value must be a ``validation_error`` naming the
option, raised before the store builds anything or talks to any server.
"""

from __future__ import annotations

import math
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_asm_contract._contract.errors import ErrorCode, StoreError
from reference_stores._options import boolean, non_negative_float, positive_float, positive_int
from reference_stores.s3 import S3ArtifactStore, S3SessionStore
from reference_stores.sql import SqlSessionStore

#: Nothing listens here: a store that tried to reach it would fail with a connection error.
NOWHERE = "http://127.0.0.1:1"

Parser = Callable[[object, str], Any]


# -- the helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("yes", True),
        ("On", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("\tno\n", False),
        ("OFF", False),
        ("0", False),
    ],
)
def test_boolean_accepts_bools_and_their_string_forms(value: object, expected: bool) -> None:
    assert boolean(value, "flag") is expected


@pytest.mark.parametrize(
    ("parser", "value", "expected"),
    [
        (positive_float, 2.5, 2.5),
        (positive_float, 3, 3.0),
        (positive_float, "2.5", 2.5),
        (positive_float, " 50 ", 50.0),
        (positive_float, "1e-3", 0.001),
        (non_negative_float, 0, 0.0),
        (non_negative_float, "0", 0.0),
        (non_negative_float, "0.25", 0.25),
        (non_negative_float, 7, 7.0),
        (positive_int, 16, 16),
        (positive_int, "16", 16),
        (positive_int, " 16 ", 16),
        (positive_int, 16.0, 16),
        (positive_int, "16.0", 16),
        (positive_int, "1e3", 1000),
        (positive_int, 1, 1),
    ],
)
def test_numbers_accept_numbers_and_their_string_forms(
    parser: Parser, value: object, expected: float
) -> None:
    parsed = parser(value, "n")
    assert parsed == expected
    assert type(parsed) is type(expected)


@pytest.mark.parametrize(
    ("parser", "value", "expected"),
    [
        (boolean, "ture", "a boolean"),
        (boolean, "", "a boolean"),
        (boolean, "2", "a boolean"),
        (boolean, 2, "a boolean"),
        (boolean, 1.0, "a boolean"),
        (boolean, None, "a boolean"),
        (boolean, [], "a boolean"),
        (positive_float, "fast", "a finite number greater than 0"),
        (positive_float, "", "a finite number greater than 0"),
        (positive_float, 0, "a finite number greater than 0"),
        (positive_float, "-1", "a finite number greater than 0"),
        (positive_float, "nan", "a finite number greater than 0"),
        (positive_float, math.inf, "a finite number greater than 0"),
        (positive_float, "-inf", "a finite number greater than 0"),
        (positive_float, True, "a finite number greater than 0"),
        (positive_float, None, "a finite number greater than 0"),
        (non_negative_float, "-0.5", "a finite number of at least 0"),
        (non_negative_float, -1, "a finite number of at least 0"),
        (non_negative_float, "nan", "a finite number of at least 0"),
        (non_negative_float, "soon", "a finite number of at least 0"),
        (positive_int, "many", "a whole number of at least 1"),
        (positive_int, "2.5", "a whole number of at least 1"),
        (positive_int, 2.5, "a whole number of at least 1"),
        (positive_int, 0, "a whole number of at least 1"),
        (positive_int, "-3", "a whole number of at least 1"),
        (positive_int, "inf", "a whole number of at least 1"),
        (positive_int, "1e400", "a whole number of at least 1"),
        (positive_int, False, "a whole number of at least 1"),
        (positive_int, object(), "a whole number of at least 1"),
    ],
)
def test_a_bad_value_is_a_validation_error_naming_option_value_and_expectation(
    parser: Parser, value: object, expected: str
) -> None:
    with pytest.raises(StoreError) as raised:
        parser(value, "some_option")

    error = raised.value
    assert error.code is ErrorCode.VALIDATION_ERROR
    assert error.details["option"] == "some_option"
    assert "option some_option" in error.message
    assert f"must be {expected}" in error.message
    assert repr(value)[:80] in error.message
    # Plain data in the details: the error crosses process boundaries and lands in reports.
    assert pickle.loads(pickle.dumps(error)).details == error.details


def test_the_details_hold_the_value_given() -> None:
    with pytest.raises(StoreError) as raised:
        positive_int("2.5", "max_workers")
    assert raised.value.details == {"option": "max_workers", "value": "2.5"}


def test_a_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(StoreError) as raised:
        boolean("x" * 1000, "notify")
    assert len(raised.value.message) < 200


# -- every store that takes options -------------------------------------------------------------
@dataclass(frozen=True)
class Kind:
    """A kind of option: values it takes, values it rejects, and what each is read as."""

    good: tuple[tuple[object, object], ...]
    bad: tuple[object, ...]


BOOLEAN = Kind(
    good=(
        *(("true", True), (" Yes ", True), ("ON", True), ("1", True), (True, True)),
        *(("false", False), ("No", False), ("off", False), ("0", False), (False, False)),
    ),
    bad=("ture", "", "2", "maybe"),
)
POSITIVE = Kind(
    good=(("25", 25.0), (" 2.5 ", 2.5), ("1e2", 100.0), (7, 7.0), (0.5, 0.5)),
    bad=("fast", "", "0", "-1", 0, -2.5, "nan", "inf"),
)
NON_NEGATIVE = Kind(
    good=(("0", 0.0), (0, 0.0), ("2.5", 2.5), (3, 3.0)),
    bad=("soon", "-1", -0.5, "nan", "inf"),
)
POSITIVE_INT = Kind(
    good=(("4", 4), (" 8 ", 8), (3, 3), (2.0, 2), ("1e1", 10)),
    bad=("many", "", "0", "-3", 0, "2.5", 2.5, "inf"),
)

SQL_OPTIONS = {
    "create_schema": BOOLEAN,
    "isolated": BOOLEAN,
    "notify": BOOLEAN,
    "poll_interval_ms": POSITIVE,
}
S3_SESSION_OPTIONS = {
    "create_bucket": BOOLEAN,
    "snapshot_interval": POSITIVE_INT,
    "claim_grace_seconds": NON_NEGATIVE,
    "commit_timeout_seconds": POSITIVE,
    "poll_interval_seconds": NON_NEGATIVE,
    "max_workers": POSITIVE_INT,
}
S3_ARTIFACT_OPTIONS = {
    "create_bucket": BOOLEAN,
    "multipart_threshold": POSITIVE_INT,
    "multipart_chunksize": POSITIVE_INT,
}


def _bad(options: dict[str, Kind]) -> list[Any]:
    return [
        pytest.param(name, value, id=f"{name}={value!r}")
        for name, kind in options.items()
        for value in kind.bad
    ]


def _good(options: dict[str, Kind]) -> list[Any]:
    return [
        pytest.param(name, value, read, id=f"{name}={value!r}")
        for name, kind in options.items()
        for value, read in kind.good
    ]


def _assert_rejected(raised: pytest.ExceptionInfo[StoreError], option: str, value: object) -> None:
    error = raised.value
    assert error.code is ErrorCode.VALIDATION_ERROR, error
    assert error.details["option"] == option
    assert f"option {option} must be " in error.message
    assert repr(value) in error.message


@pytest.fixture
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Temporary files of the code under test land here, where a test can see them."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory


def _s3_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("asm-s3")}


class RecordingClient:
    """Stands in for a boto3 client: records every call, and the bucket always exists."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def head_bucket(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("head_bucket")
        return {}

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        raise AssertionError(f"the store used the client's {name}")


# SqlSessionStore -------------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value"), _bad(SQL_OPTIONS))
def test_sql_store_rejects_a_bad_option_before_making_anything(
    option: str, value: object, private_tempdir: Path
) -> None:
    with pytest.raises(StoreError) as raised:
        SqlSessionStore(**{option: value})

    _assert_rejected(raised, option, value)
    assert list(private_tempdir.iterdir()) == []  # no temporary database


@pytest.mark.parametrize(("option", "value"), _bad(SQL_OPTIONS))
def test_sql_store_on_a_file_rejects_a_bad_option_before_creating_the_file(
    option: str, value: object, tmp_path: Path
) -> None:
    database = tmp_path / "store.db"
    options: dict[str, Any] = {"create_schema": True, option: value}
    with pytest.raises(StoreError) as raised:
        SqlSessionStore(f"sqlite:///{database}", **options)

    _assert_rejected(raised, option, value)
    assert not database.exists()


@pytest.mark.parametrize(("option", "value", "read"), _good(SQL_OPTIONS))
def test_sql_store_accepts_the_valid_forms(option: str, value: object, read: object) -> None:
    store = SqlSessionStore(**{option: value})
    try:
        reopen = store.asm_reopen_spec()[1]
        if option == "notify":
            assert reopen["notify"] is read
        elif option == "poll_interval_ms":
            assert reopen["poll_interval_ms"] == pytest.approx(read)
    finally:
        store.close()


# S3SessionStore --------------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value"), _bad(S3_SESSION_OPTIONS))
def test_s3_session_store_rejects_a_bad_option_before_contacting_a_server(
    option: str, value: object
) -> None:
    threads = _s3_threads()
    # create_bucket=true: a store that read its options too late would call the server first.
    options: dict[str, Any] = {"create_bucket": "true", option: value}
    with pytest.raises(StoreError) as raised:
        S3SessionStore(endpoint_url=NOWHERE, **options)

    _assert_rejected(raised, option, value)
    assert _s3_threads() == threads


@pytest.mark.parametrize(("option", "value"), _bad(S3_SESSION_OPTIONS))
def test_s3_session_store_rejects_a_bad_option_before_using_its_client(
    option: str, value: object
) -> None:
    client = RecordingClient()
    with pytest.raises(StoreError) as raised:
        S3SessionStore(client=client, **{"create_bucket": True, option: value})

    _assert_rejected(raised, option, value)
    assert client.calls == []


@pytest.mark.parametrize(
    ("option", "value", "read"),
    [p for p in _good(S3_SESSION_OPTIONS) if p.values[0] != "create_bucket"],
)
def test_s3_session_store_accepts_the_valid_forms(option: str, value: object, read: object) -> None:
    pytest.importorskip("boto3")
    store = S3SessionStore(endpoint_url=NOWHERE, **{option: value})
    try:
        parsed = store.peer_options()[option]
        assert parsed == read
        assert type(parsed) is type(read)
    finally:
        store.close()


@pytest.mark.parametrize(("value", "read"), BOOLEAN.good)
def test_s3_session_store_reads_create_bucket(value: object, read: bool) -> None:
    pytest.importorskip("boto3")
    client = RecordingClient()
    store = S3SessionStore(client=client, create_bucket=value)
    store.close()
    assert client.calls == (["head_bucket"] if read else [])


# S3ArtifactStore -------------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value"), _bad(S3_ARTIFACT_OPTIONS))
def test_s3_artifact_store_rejects_a_bad_option_before_contacting_a_server(
    option: str, value: object
) -> None:
    options: dict[str, Any] = {"create_bucket": "true", option: value}
    with pytest.raises(StoreError) as raised:
        S3ArtifactStore(endpoint_url=NOWHERE, **options)

    _assert_rejected(raised, option, value)


@pytest.mark.parametrize(("option", "value"), _bad(S3_ARTIFACT_OPTIONS))
def test_s3_artifact_store_rejects_a_bad_option_before_using_its_client(
    option: str, value: object
) -> None:
    client = RecordingClient()
    with pytest.raises(StoreError) as raised:
        S3ArtifactStore(client=client, **{"create_bucket": True, option: value})

    _assert_rejected(raised, option, value)
    assert client.calls == []


@pytest.mark.parametrize(
    ("option", "value", "read"),
    [p for p in _good(S3_ARTIFACT_OPTIONS) if p.values[0] != "create_bucket"],
)
def test_s3_artifact_store_accepts_the_valid_forms(
    option: str, value: object, read: object
) -> None:
    pytest.importorskip("boto3")
    store = S3ArtifactStore(endpoint_url=NOWHERE, **{option: value})
    assert getattr(store, option) == read


@pytest.mark.parametrize(("value", "read"), BOOLEAN.good)
def test_s3_artifact_store_reads_create_bucket(value: object, read: bool) -> None:
    pytest.importorskip("boto3")
    client = RecordingClient()
    S3ArtifactStore(client=client, create_bucket=value)
    assert client.calls == (["head_bucket"] if read else [])
