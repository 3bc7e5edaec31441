"""Async stores (docs/async.md): told apart by their operations, then built, driven and closed on
an event loop of their own, from ``--asm-store``, a conftest's factory or a worker process."""

from __future__ import annotations

import asyncio
import contextvars
import json
import textwrap
import threading
from typing import Any

import pytest

from pytest_asm_contract import ErrorCode, Event, StoreError
from pytest_asm_contract._concurrency.async_bridge import AsyncStoreFacade, StoreBuilder
from pytest_asm_contract._concurrency.event_loop import LoopClosed
from pytest_asm_contract._contract.async_port import MixedPortError, is_async_store
from reference_stores.memory import InMemorySessionStore
from tests.verdicts import REPORT, run_kit
from tests.zoo.async_stores import AsyncThreadFacade

#: Only a broken bridge gets near it: every wait below ends on an event.
GUARD_S = 60.0
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")

MIXED = textwrap.dedent(
    """
    from tests.zoo.async_stores import AsyncThreadFacade


    class Mixed(AsyncThreadFacade):
        def get_session(self, session_id):
            return self._store.get_session(session_id)

        def list_runs(self, session_id, **filters):
            return self._store.list_runs(session_id, **filters)


    def make_mixed():
        return Mixed()
    """
)


class LoopBoundStore:
    """A few async operations that check they run on the loop the store was built on."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()  # raises unless built inside a running loop
        self.thread = threading.current_thread()
        self.appended = asyncio.Event()
        self.reader_waiting = threading.Event()
        self.error = StoreError(ErrorCode.SESSION_NOT_FOUND, "no session 'missing'")
        self.closed_on: asyncio.AbstractEventLoop | None = None

    def _on_my_loop(self) -> None:
        assert asyncio.get_running_loop() is self.loop

    async def append_event(self, event: Event) -> None:
        self._on_my_loop()
        self.appended.set()

    async def get_events(self, session_id: str, **filters: Any) -> list[Event]:
        self._on_my_loop()
        self.reader_waiting.set()
        await self.appended.wait()  # ended only by an append made while this call waits
        return []

    async def get_session(self, session_id: str) -> Any:
        self._on_my_loop()
        raise self.error

    async def get_latest_sequence(self, session_id: str) -> int:
        self._on_my_loop()
        return len(CALLER.get())

    async def close(self) -> None:
        self.closed_on = asyncio.get_running_loop()


def test_async_and_sync_stores_are_told_apart_by_their_operations() -> None:
    assert is_async_store(AsyncThreadFacade) and is_async_store(AsyncThreadFacade())
    assert not is_async_store(InMemorySessionStore) and not is_async_store(object())

    class Mixed(AsyncThreadFacade):
        def get_session(self, session_id: str) -> Any:
            return self._store.get_session(session_id)

    with pytest.raises(MixedPortError, match=r"Mixed mixes .*: get_session is a plain method"):
        is_async_store(Mixed)
    assert not isinstance(StoreBuilder(InMemorySessionStore)(), AsyncStoreFacade)


def test_an_async_store_lives_and_is_closed_on_its_own_loop() -> None:
    facade = StoreBuilder(LoopBoundStore)()
    assert isinstance(facade, AsyncStoreFacade)
    store = facade.asm_async_store
    assert isinstance(store, LoopBoundStore)
    assert store.thread is facade.asm_loop_thread.thread is not threading.current_thread()

    # A call in flight does not hold up another: both are tasks on the store's one loop.
    read: list[list[Event]] = []
    reader = threading.Thread(target=lambda: read.append(facade.get_events("s")), daemon=True)
    reader.start()
    assert store.reader_waiting.wait(GUARD_S)
    facade.append_event(None)
    reader.join(GUARD_S)
    assert read == [[]]

    with pytest.raises(StoreError) as caught:
        facade.get_session("missing")
    assert caught.value is store.error, "the store's exception reaches the caller unchanged"
    CALLER.set("the kit")
    assert facade.get_latest_sequence("s") == len("the kit"), "the caller's context goes along"

    facade.close()
    assert store.closed_on is store.loop, "async close() is awaited on the store's loop"
    assert store.loop.is_closed() and not facade.asm_loop_thread.thread.is_alive()
    with pytest.raises(LoopClosed):
        facade.get_session("missing")


@pytest.mark.parametrize("target", ["mixed_stores:Mixed", "mixed_stores:make_mixed"])
def test_a_store_mixing_async_and_plain_operations_is_a_usage_error(
    pytester: pytest.Pytester, target: str
) -> None:
    pytester.makepyfile(mixed_stores=MIXED)
    pytester.syspathinsert()
    result = pytester.runpytest(f"--asm-store={target}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --asm-store={target}: Mixed mixes async and plain operations: get_session, "
            "list_runs are plain methods while 12 others are `async def`*"
        ]
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_the_kit_closes_each_async_store_on_its_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        recorded_store="""
        import asyncio

        from tests.zoo.async_stores import AsyncThreadFacade

        BUILT = []


        class Recorded(AsyncThreadFacade):
            def __init__(self):
                super().__init__()
                self.loop = asyncio.get_running_loop()
                self.closed_on = None
                BUILT.append(self)

            async def close(self):
                self.closed_on = asyncio.get_running_loop()
                super().close()
        """,
        test_closing="""
        import recorded_store


        def test_uses_a_store(asm_store):
            assert asm_store.get_latest_sequence("s") == 0


        def test_that_store_was_closed_on_its_loop():
            (store,) = recorded_store.BUILT[1:]  # the first was the kit's check of the factory
            assert store.closed_on is store.loop and store.loop.is_closed()
        """,
    )
    pytester.syspathinsert()
    result = pytester.runpytest(
        "--asm-store=recorded_store:Recorded", "test_closing.py", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)


FACTORIES = {
    "async-def": """
        async def build():
            return AsyncThreadFacade()
        return build
    """,
    "sync-function": """
        return lambda: AsyncThreadFacade()
    """,
    "class": """
        return AsyncThreadFacade
    """,
}


@pytest.mark.parametrize("factory", sorted(FACTORIES))
def test_a_conftest_factory_may_build_an_async_store(
    pytester: pytest.Pytester, factory: str
) -> None:
    pytester.makeconftest(
        "import pytest\n"
        "from tests.zoo.async_stores import AsyncThreadFacade\n\n\n"
        '@pytest.fixture(scope="session")\n'
        "def asm_store_factory():\n" + textwrap.indent(textwrap.dedent(FACTORIES[factory]), "    ")
    )
    pytester.makepyfile(test_contract="from pytest_asm_contract.suite import *  # noqa: F403\n")
    result, verdicts = run_kit(pytester, "--asm-rules=PORT,SEQ,CONC", "--asm-profile=quick")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert {verdicts.status(r) for r in ("PORT-1", "PORT-2", "SEQ-1", "CONC-1")} == {"passed"}


@pytest.mark.parametrize(
    ("store", "is_async"),
    [
        ("tests.zoo.async_stores:AsyncThreadFacade", True),
        (f"{InMemorySessionStore.__module__}:InMemorySessionStore", False),
    ],
    ids=["async", "sync"],
)
def test_the_report_says_whether_the_store_is_async(
    pytester: pytest.Pytester, store: str, is_async: bool
) -> None:
    # Even with the ASYNC checks deselected: a CI gate must still know they count.
    result, _ = run_kit(pytester, f"--asm-store={store}", "--asm-rules=SES")
    assert result.ret == 0, result.stdout.str()[-3000:]
    report = json.loads((pytester.path / f"{REPORT}.json").read_text())
    assert report["async_store"] is is_async


def test_worker_processes_reopen_an_async_store_on_their_own_loop(
    pytester: pytest.Pytester,
) -> None:
    # Shared-backend checks and killed writers open the store in worker processes from its
    # asm_reopen_spec(), which names the async class: they build it behind a facade as well.
    result, verdicts = run_kit(
        pytester,
        "--asm-store=tests.zoo.async_stores:AsyncSqlThreadFacade",
        "--asm-profile=quick",
        "-k",
        "TestSharedBackend or TestCrash",
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert verdicts.status("CONC-3") == "passed"
    killed = [t for t in verdicts.rules["FLUSH-3"]["tests"] if "killed_writer" in t["nodeid"]]
    assert [t["outcome"] for t in killed] == ["passed"], killed
