"""The kit's FLUSH-3 check, through the SQL store's fault hook, catches broken SQL stores."""

from __future__ import annotations

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._contract.model import ExecutionResult
from pytest_asm_contract._faults.policies import FailNthWrite
from pytest_asm_contract._faults.sqlalchemy import sql_is_write
from pytest_asm_contract._faults.targets import injector_for
from pytest_asm_contract.suite._builders import a_run, a_session, sequences, some_events
from reference_stores.sql import SqlSessionStore
from tests.stores.sql import broken
from tests.stores.sql.conftest import server_url
from tests.verdicts import run_kit

#: broken store -> the server it runs on (None: the embedded SQLite default). Reserving numbers
#: in a second transaction cannot even run on SQLite, where the first holds the write lock.
BROKEN = {
    "SplitFlushStore": None,
    "RawErrorStore": None,
    "CounterOutsideTransactionStore": "postgresql",
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_sql_store_fails_flush_3(pytester: pytest.Pytester, name: str) -> None:
    store_class = getattr(broken, name)
    server = BROKEN[name]
    options = []
    if server is not None:
        options = [f"--asm-store-option=url={server_url(server)}", "--asm-store-option=isolated=1"]
    result, verdicts = run_kit(
        pytester, f"--asm-store=tests.stores.sql.broken:{name}", *options, "--asm-rules=FLUSH-3"
    )
    assert result.ret == 1
    assert set(store_class.BREAKS) <= verdicts.failed, verdicts.statuses


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_sql_store_works_while_nothing_fails(name: str) -> None:
    """Each flaw shows only under failures: the kit must catch it by injecting them."""
    server = BROKEN[name]
    options = {} if server is None else {"url": server_url(server), "isolated": True}
    with getattr(broken, name)(**options) as store:
        session = a_session()
        run = a_run(session)
        store.flush(ExecutionResult(session=session, run=run, events=some_events(session, 2, run)))
        appended = store.append_events(some_events(session, 3))
        assert sequences(appended) == [3, 4, 5]
        assert sequences(store.get_events(session.id)) == [1, 2, 3, 4, 5]
        assert store.get_run(run.id) == run


def test_the_hook_returns_the_engine_every_write_goes_through() -> None:
    with SqlSessionStore() as store:
        injector = injector_for(store)
        assert injector is not None
        session = a_session()
        with injector.armed(FailNthWrite.counting()) as plan:
            store.save_session(session)
            store.append_events(some_events(session, 3))
            store.delete_session(session.id)
        # one upsert; counter and one executemany insert; the delete locks the counter (an
        # upsert adding 0), then deletes the session, events, runs, counter and artifact metadata
        assert plan.writes_seen == 1 + 2 + 6


@rule("FLUSH-3")
def test_one_store_fault_hook_does_not_reach_another_on_the_same_engine(pg_url: str) -> None:
    with (
        SqlSessionStore(pg_url, isolated=True) as first,
        SqlSessionStore(pg_url, isolated=True) as second,
    ):
        injector = injector_for(first)
        assert injector is not None
        with injector.armed(FailNthWrite(1)) as plan:
            second.save_session(a_session())
        assert not plan.fired and plan.writes_seen == 0


@pytest.mark.parametrize(
    ("statement", "write"),
    [
        ("INSERT INTO t VALUES (1)", True),
        ("  update t set a = 1", True),
        ("/* c */ DELETE FROM t", True),
        ("-- c\nREPLACE INTO t VALUES (1)", True),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", True),
        ("SELECT 1", False),
        ("SELECT last FROM t FOR UPDATE", False),
        ("BEGIN IMMEDIATE", False),
        ("WITH x AS (SELECT 1) SELECT * FROM x", False),
    ],
)
def test_write_statements_are_recognised(statement: str, write: bool) -> None:
    assert sql_is_write(statement) is write
