"""The Maintenance port's types: the retention policy's defaults and validation (a bad policy is
a validation_error before anything changes), and the report."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_asm_contract import (
    MAINTENANCE_OPERATIONS,
    ErrorCode,
    EventType,
    Maintenance,
    MaintenanceReport,
    RetentionPolicy,
    SessionStatus,
    StoreError,
    as_retention_policy,
)


def test_the_policy_defaults_are_the_specs() -> None:
    policy = RetentionPolicy()
    assert policy.max_session_age_days is None
    assert policy.max_completed_session_age_days == 90
    assert policy.max_events_per_session is None
    assert policy.hard_delete_after_days == 30
    assert policy.exempt_statuses == [SessionStatus.ACTIVE, SessionStatus.PAUSED]
    assert policy.exempt_tags == ["pinned"]
    assert policy.prune_event_types_first == [
        EventType.MESSAGE_STREAMED,
        EventType.TOKEN_USAGE_UPDATED,
    ]
    assert policy.batch_size == 100


def test_a_dict_is_validated_into_a_policy() -> None:
    policy = as_retention_policy({"max_events_per_session": 5, "exempt_statuses": ["paused"]})
    assert policy.max_events_per_session == 5
    assert policy.exempt_statuses == [SessionStatus.PAUSED]
    assert as_retention_policy(policy) == policy  # an instance is re-validated, never trusted


@pytest.mark.parametrize(
    "fields",
    [
        {"max_events_per_session": 0},
        {"max_session_age_days": -1},
        {"hard_delete_after_days": True},
        {"batch_size": 1.5},
        {"batch_size": None},
        {"exempt_statuses": ["sleeping"]},
        {"prune_event_types_first": ["no_such_type"]},
        {"exempt_tags": [7]},
        {"archive_before_prune": True},  # the Elixir policy's, not this edition's
    ],
)
def test_a_bad_policy_raises_validation_error(fields: dict[str, Any]) -> None:
    with pytest.raises(StoreError) as caught:
        as_retention_policy(fields)
    assert caught.value.code is ErrorCode.VALIDATION_ERROR
    assert "invalid retention policy" in caught.value.message


def test_only_a_policy_or_a_dict_is_a_policy() -> None:
    with pytest.raises(StoreError) as caught:
        as_retention_policy("90 days")
    assert caught.value.code is ErrorCode.VALIDATION_ERROR


def test_the_report_counts_start_at_zero_and_the_protocol_names_every_operation() -> None:
    report = MaintenanceReport()
    assert report.model_dump() == {
        "sessions_soft_deleted": 0,
        "sessions_hard_deleted": 0,
        "events_pruned": 0,
        "artifacts_cleaned": 0,
        "orphaned_sequences_cleaned": 0,
        "duration_ms": 0.0,
        "errors": [],
    }
    assert all(hasattr(Maintenance, name) for name in MAINTENANCE_OPERATIONS)
