"""QRY-3 and QRY-7 while the store changes between and during page reads: a cursor keeps its
place (keyset semantics), and pages read after a write reflect it.

Each check pages one kind of record in one order, with a small limit, over a data set of its
own, while records are added (new sessions, runs and events through the store's port), removed
(``delete_session``, which takes the session's runs and events along) and re-saved. A record's
position is its order's value (as the record holds it) and its id. What the QRY-3 checks assert
of each complete paging, from the first page to the page without a cursor:

* a record that matched throughout, that is one stored before the first page was read, never
  deleted and whose position never changed, comes back exactly once;
* no record comes back twice, except one whose position changed meanwhile (a session re-saved
  with another ``updated_at`` under ``updated_at_desc``): it was at two positions, and may come
  back at each of them once. Records added meanwhile need not come back (QRY-7 says which must);
* the records come back strictly in order: each one sorts after the one before it, so nothing
  that sorts before a cursor comes back after it.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from pytest_asm_contract import rule
from pytest_asm_contract._concurrency.threads import HANG_GUARD_S, run_threads
from pytest_asm_contract._contract.usage import token_totals
from pytest_asm_contract.suite._builders import a_run, a_session, an_event, at
from pytest_asm_contract.suite._query_data import EVERY_ORDER, _pages, _search

#: The page size: page 1 is the first LIMIT records, and writes land around its cursor.
LIMIT = 3
#: Upper bound on the pagings one racing reader makes, so slow stores finish in reasonable time.
MAX_PASSES = 100

#: id, created_at, updated_at (seconds after T0), events. Ties on created_at and updated_at
#: straddle page boundaries; the single-event sessions hold the first events of every event
#: order, so that deleting one removes records before the cursor and nothing else.
SESSIONS = (
    ("k-1", 10, 100, 1),
    ("k-2", 20, 150, 3),
    ("k-3", 30, 110, 1),
    ("k-4", 30, 150, 2),
    ("k-5", 40, 120, 1),
    ("k-6", 60, 130, 3),
    ("k-7", 60, 150, 1),
    ("k-8", 60, 140, 2),
    ("k-9", 70, 150, 1),
)
#: id, session, started_at, total tokens; most sessions hold one run, two hold two.
RUNS = (
    ("r-a1", "k-1", 200, 50),
    ("r-a2", "k-2", 210, 80),
    ("r-b2", "k-2", 230, 20),
    ("r-a3", "k-3", 220, 80),
    ("r-a4", "k-4", 220, 30),
    ("r-a5", "k-5", 240, 60),
    ("r-a6", "k-6", 250, 10),
    ("r-b6", "k-6", 200, 90),
    ("r-a7", "k-7", 260, 60),
    ("r-a8", "k-8", 270, 100),
    ("r-a9", "k-9", 220, 40),
)
#: Event timestamps (seconds after T0) by id; ``ev-<session digit><sequence number>``.
EVENT_TIMES = {
    "ev-11": 300,
    "ev-21": 320,
    "ev-22": 330,
    "ev-23": 390,
    "ev-31": 305,
    "ev-41": 320,
    "ev-42": 350,
    "ev-51": 340,
    "ev-61": 320,
    "ev-62": 360,
    "ev-63": 380,
    "ev-71": 395,
    "ev-81": 350,
    "ev-82": 370,
    "ev-91": 400,
}
#: The racing writer's steps. Its first step adds a record before every position, and the
#: records it adds at the front always outnumber those it removes there, so that a cursor
#: holding an offset instead of a position is caught in every run.
RACE_PLAN = (
    "front",
    "front",
    "end",
    "drop-front",
    "drop-tail",
    "front",
    "touch",
    "end",
    "drop-front",
    "front",
    "drop-tail",
    "end",
    "drop-front",
    "front",
    "touch",
    "end",
    "drop-front",
    "front",
)


def _crowd(store: Any) -> None:
    for sid, created, updated, events in SESSIONS:
        store.save_session(a_session(id=sid, created_at=at(created), updated_at=at(updated)))
        for n in range(1, events + 1):
            eid = f"ev-{sid[-1]}{n}"
            store.append_event(an_event(sid, id=eid, timestamp=at(EVENT_TIMES[eid])))
    for rid, sid, started, tokens in RUNS:
        store.save_run(a_run(sid, id=rid, started_at=at(started), token_usage=_tokens(tokens)))


def _tokens(total: int) -> dict[str, Any]:
    return {"input_tokens": total, "output_tokens": 0}


#: Each order's value of a record (QRY-2); ties are broken by id. Token totals are read from
#: the run itself, as the records added meanwhile have no entry in the shared data's tables.
ORDER_VALUES: dict[str, Callable[[Any], Any]] = {
    "updated_at_desc": lambda s: s.updated_at,
    "created_at_asc": lambda s: s.created_at,
    "created_at_desc": lambda s: s.created_at,
    "started_at_desc": lambda r: r.started_at,
    "started_at_asc": lambda r: r.started_at,
    "token_usage_desc": lambda r: token_totals(r.token_usage).total_tokens,
    "sequence_asc": lambda e: e.sequence_number or 0,
    "timestamp_asc": lambda e: e.timestamp,
    "timestamp_desc": lambda e: e.timestamp,
}


def _id_beside(record_id: str, smaller: bool) -> str:
    """An id that sorts just below (``smaller``) or just above ``record_id``."""
    return record_id[:-1] + chr(ord(record_id[-1]) - 1) + "z" if smaller else record_id + "a"


class _Scene:
    """The data set of one check, the writes it makes, and what it asserts of a paging."""

    def __init__(self, store: Any, kind: str, order: str) -> None:
        self.store, self.kind, self.order = store, kind, order
        self.descending = order.endswith("_desc")
        self.value = ORDER_VALUES[order]
        _crowd(store)
        self.initial = self.records()
        self.ordered = sorted(self.initial.values(), key=self.key, reverse=self.descending)
        self.made = 0
        self.fronts: list[str] = []  # sessions of the records the racing writer added in front
        # Where sequence_asc adds records at the end: the next event of the longest session.
        self.tail = max(SESSIONS, key=lambda s: (s[3], s[0]))[0]

    # -- reading and ordering -------------------------------------------------------------------
    def records(self) -> dict[str, Any]:
        """Every record of this kind, as the store's own reads return it."""
        sessions = self.store.list_sessions()
        if self.kind == "sessions":
            return {s.id: s for s in sessions}
        if self.kind == "runs":
            return {r.id: r for s in sessions for r in self.store.list_runs(s.id)}
        return {e.id: e for s in sessions for e in self.store.get_events(s.id)}

    def key(self, record: Any) -> tuple[Any, str]:
        return (self.value(record), record.id)

    def after(self, record: Any, position: tuple[Any, str]) -> bool:
        """Whether ``record`` sorts after ``position`` in this order."""
        key = self.key(record)
        return key < position if self.descending else key > position

    def owner(self, record: Any) -> str:
        return str(record.id if self.kind == "sessions" else record.session_id)

    def whole_sessions(self, within: Callable[[Any], bool]) -> list[str]:
        """Sessions whose records of this kind all pass ``within``, in order of their first."""
        found = dict.fromkeys(self.owner(r) for r in self.ordered)
        for record in self.ordered:
            if not within(record):
                found.pop(self.owner(record), None)
        return list(found)

    # -- writes ---------------------------------------------------------------------------------
    def insert(self, where: str, near: Any = None) -> str:
        """Add one record: in front of every other, at the end, or with ``near``'s order value
        just before or after it (``tie-before``, ``tie-after``). Returns its id."""
        self.made += 1
        n = self.made
        if where.startswith("tie") and self.order == "sequence_asc" and near.sequence_number != 1:
            # a new session's event is number 1: it ties only with another session's first event
            where = "front" if where == "tie-before" else "end"
        front, tie = where == "front", where.startswith("tie")
        smaller = (where == "tie-before") != self.descending
        rid = _id_beside(near.id, smaller) if tie else f"n-{n:02d}-{where}"
        first = (where == "front") != self.descending
        far = at(-1000 - n) if first else at(10_000 + n)
        if self.kind == "sessions":
            moment = self.value(near) if tie else far
            self.store.save_session(a_session(id=rid, created_at=moment, updated_at=moment))
            return rid
        sid = f"{rid}-s"
        self.store.save_session(a_session(id=sid, created_at=at(0), updated_at=at(0)))
        if self.kind == "runs":
            if self.order == "token_usage_desc":
                tokens = self.value(near) if tie else 10_000 + n if front else 1
                run = a_run(sid, id=rid, started_at=at(500), token_usage=_tokens(tokens))
            else:
                moment = self.value(near) if tie else far
                run = a_run(sid, id=rid, started_at=moment, token_usage=_tokens(50))
            self.store.save_run(run)
            return rid
        if self.order != "sequence_asc":
            moment = self.value(near) if tie else far
            self.store.append_event(an_event(sid, id=rid, timestamp=moment))
        elif front:  # number 1, with an id below every other first event's
            rid = f"ev-0{n:02d}"
            self.store.append_event(an_event(sid, id=rid, timestamp=at(500)))
        elif tie:
            self.store.append_event(an_event(sid, id=rid, timestamp=at(500)))
        else:  # the next number of the longest session: after every event stored before
            rid = f"ev-x{n:02d}"
            self.store.append_event(an_event(self.tail, id=rid, timestamp=at(500)))
        return rid

    def delete(self, session_ids: Iterable[str]) -> None:
        for session_id in session_ids:
            self.store.delete_session(session_id)

    def touch(self, record: Any, move: str | None = None) -> None:
        """Save ``record`` again with another field changed; a session also gets an
        ``updated_at`` that puts it in ``move`` ("front" or "end") of ``updated_at_desc``."""
        self.made += 1
        if self.kind == "sessions":
            update: dict[str, Any] = {"tags": [*record.tags, f"t{self.made}"]}
            if move is not None:
                newest = (move == "front") == self.descending
                update["updated_at"] = at(20_000 + self.made if newest else -20_000 - self.made)
            self.store.save_session(record.model_copy(update=update))
        elif self.kind == "runs":
            self.store.save_run(record.model_copy(update={"output": {"touched": self.made}}))

    def race_step(self, step: str, tail_sessions: list[str], touched: list[Any]) -> None:
        if step in ("front", "end"):
            rid = self.insert(step)
            if step == "front":
                self.fronts.append(rid if self.kind == "sessions" else f"{rid}-s")
        elif step == "drop-front":
            self.delete([self.fronts.pop(0)])
        elif step == "drop-tail" and tail_sessions:
            self.delete([tail_sessions.pop()])
        elif step == "touch" and touched:
            self.touch(self.records()[touched[0].id], move="front")

    # -- the verdict ----------------------------------------------------------------------------
    def check(self, seen: list[Any], call: str) -> None:
        """What QRY-3 asserts of one paging (module docstring), once the writes are done."""
        now = self.records()
        moved = {i for i, r in self.initial.items() if i in now and self.key(now[i]) != self.key(r)}
        stable = [r.id for r in self.ordered if r.id in now and r.id not in moved]
        ids = [r.id for r in seen]
        counts = Counter(ids)
        twice = sorted(i for i, c in counts.items() if c > 1 and i not in moved)
        missing = [i for i in stable if counts[i] == 0]
        keys = [self.key(r) for r in seen]
        disorder = [
            f"{a[1]} then {b[1]}"
            for a, b in itertools.pairwise(keys)
            if (a <= b if self.descending else a >= b)
        ]
        problems = [
            f"came back twice: {twice}" if twice else "",
            f"never came back though stored throughout: {missing}" if missing else "",
            f"out of order: {', '.join(disorder[:5])}" if disorder else "",
        ]
        assert not (twice or missing or disorder), (
            f"{call} while records were added and removed around the cursor: "
            f"{'; '.join(p for p in problems if p)} (pages: {ids}). A cursor must hold a "
            "position (order value and id), not an offset: every record stored throughout comes "
            "back exactly once, none twice, in order"
        )


def _paging(query: Any, kind: str, first: Any, **kwargs: Any) -> list[Any]:
    """The records of ``first`` and of every page that follows its cursor."""
    pages = (
        [first] if first.cursor is None else [first, *_pages(query, kind, first.cursor, **kwargs)]
    )
    return [record for page in pages for record in getattr(page, kind)]


class TestQueryConcurrentWrites:
    @rule("QRY-3")
    @pytest.mark.parametrize(("kind", "order"), EVERY_ORDER)
    def test_cursor_keeps_its_place_when_records_are_added_and_removed_between_pages(
        self, asm_store: Any, asm_query: Any, kind: str, order: str
    ) -> None:
        """After page 1 (limit 3), before the cursor: the sessions of the first record and of
        the cursor's own record are deleted (those holding no record of the kind past page 1;
        else another page-1 session that holds none), and one record more than they held is
        added (one tying with the cursor's order value, the others in front of every record).
        After the cursor: one record is added tying with it and one at the end, and a session
        whose records all follow it is deleted. Sessions are re-saved with another updated_at,
        one from page 1 to the end and one from after the cursor to the front (moves under
        updated_at_desc, the same positions under the created_at orders); a run after the
        cursor is re-saved at its position. Then the cursor is followed to the end, and the
        paging must pass what the module docstring says."""
        scene = _Scene(asm_store, kind, order)
        kwargs = {"order_by": order, "limit": LIMIT}
        first = _search(asm_query, kind, **kwargs)
        page = getattr(first, kind)
        assert first.cursor is not None and len(page) == LIMIT, (
            f"search_{kind}({kwargs}) over {len(scene.initial)} records must fill page 1 and "
            "give a cursor"
        )
        cursor = page[-1]
        position = scene.key(cursor)
        on_page = {r.id for r in page}
        owners = dict.fromkeys([scene.owner(page[0]), scene.owner(cursor)])
        eligible = scene.whole_sessions(lambda r: r.id in on_page)
        doomed = [s for s in owners if s in eligible] or eligible[:1]
        assert doomed, f"no session holds only page-1 records of search_{kind}({kwargs})"
        removed = sum(1 for r in scene.initial.values() if scene.owner(r) in doomed)
        later = scene.whole_sessions(lambda r: scene.after(r, position))
        later = [s for s in later if s != scene.tail and s not in doomed]
        if kind == "sessions":
            scene.touch(scene.initial[page[1].id], move="end")
            scene.touch(scene.initial[later.pop(0)], move="front")
        scene.delete(doomed)
        scene.delete(later[-1:])
        if kind == "runs":
            scene.touch(next(r for r in scene.ordered if scene.owner(r) in later[:-1]))
        scene.insert("tie-before", cursor)
        for _ in range(removed):
            scene.insert("front")
        scene.insert("tie-after", cursor)
        scene.insert("end")

        seen = page + _paging(
            asm_query, kind, _search(asm_query, kind, cursor=first.cursor, **kwargs), **kwargs
        )
        scene.check(seen, f"search_{kind}(order_by={order!r}, limit={LIMIT}) from page 1 on")

    @rule("QRY-3")
    @pytest.mark.parametrize(("kind", "order"), EVERY_ORDER)
    def test_cursor_keeps_its_place_while_a_writer_races_the_readers(
        self, asm_store: Any, asm_query: Any, kind: str, order: str
    ) -> None:
        """A writer adds records in front of every position and at the end, deletes the ones
        it added in front and sessions whose records all sort after the first two pages, and
        re-saves records (a session's move to the front under updated_at_desc), while two
        readers page again and again (limits 3 and 1) until a paging began after the writer
        finished. The writer's first write waits until the first reader has read its first
        page, and that reader reads on only after the write, so at least one write falls
        between two pages in every run; everything else races. Each paging must pass what the
        module docstring says: a correct QueryAPI passes whatever the interleaving."""
        scene = _Scene(asm_store, kind, order)
        # Only records past the first two pages are removed or moved, so that no write but
        # those in front can shift an offset-based page 2.
        page_2_end = scene.key(scene.ordered[2 * LIMIT - 1])
        tail_sessions = scene.whole_sessions(lambda r: scene.after(r, page_2_end))
        tail_sessions = [s for s in tail_sessions if s != scene.tail][-2:]
        touched = [
            r
            for r in scene.ordered
            if scene.after(r, page_2_end) and scene.owner(r) not in tail_sessions
        ][:1]
        page_read, first_write, writer_done = (threading.Event() for _ in range(3))
        passes: dict[str, list[list[Any]]] = {}

        def write() -> None:
            try:
                assert page_read.wait(HANG_GUARD_S), "the first reader never read a page"
                for step in RACE_PLAN:
                    scene.race_step(step, tail_sessions, touched)
                    first_write.set()
            finally:
                first_write.set()
                writer_done.set()

        def read(name: str, limit: int, handshake: bool) -> None:
            mine = passes.setdefault(name, [])
            try:
                for _ in range(MAX_PASSES):
                    finished = writer_done.is_set()
                    first = _search(asm_query, kind, order_by=order, limit=limit)
                    if handshake and not mine:
                        page_read.set()
                        assert first_write.wait(HANG_GUARD_S), "the writer never wrote"
                    mine.append(_paging(asm_query, kind, first, order_by=order, limit=limit))
                    if finished:
                        break
            finally:
                page_read.set()

        run_threads(
            {
                "writer": write,
                "reader-3": lambda: read("reader-3", LIMIT, True),
                "reader-1": lambda: read("reader-1", 1, False),
            }
        )
        for name, pagings in passes.items():
            for n, seen in enumerate(pagings):
                scene.check(seen, f"{name}'s paging {n} of search_{kind}(order_by={order!r})")

    @rule("QRY-7")
    @pytest.mark.parametrize(("kind", "order"), EVERY_ORDER)
    def test_pages_after_the_first_reflect_writes_made_meanwhile(
        self, asm_store: Any, asm_query: Any, kind: str, order: str
    ) -> None:
        """After page 1, writes land after the cursor only: a record tying just after it and
        one at the end are added, a session whose records all follow it is deleted, and a
        session or run after it is re-saved at the same position. Every record the pages that
        follow return must equal what the store's own reads return now (so no deleted record
        and no earlier version), and both added records must come back. Which of the other
        records come back, and in what order, is QRY-3's and QRY-2's, not asserted here."""
        scene = _Scene(asm_store, kind, order)
        kwargs = {"order_by": order, "limit": LIMIT}
        first = _search(asm_query, kind, **kwargs)
        page = getattr(first, kind)
        assert first.cursor is not None and page, f"search_{kind}({kwargs}) must give a cursor"
        position = scene.key(page[-1])
        later = scene.whole_sessions(lambda r: scene.after(r, position))
        later = [s for s in later if s != scene.tail]
        doomed = later[-1]
        scene.touch(
            next(r for r in scene.ordered if scene.after(r, position) and scene.owner(r) != doomed)
        )
        scene.delete([doomed])
        added = [scene.insert("tie-after", page[-1]), scene.insert("end")]

        following = _search(asm_query, kind, cursor=first.cursor, **kwargs)
        rest = _paging(asm_query, kind, following, **kwargs)
        now = scene.records()
        gone = sorted({r.id for r in rest if r.id not in now})
        stale = sorted({r.id for r in rest if r.id in now and r != now[r.id]})
        missing = [i for i in added if i not in {r.id for r in rest}]
        assert not (gone or stale or missing), (
            f"search_{kind}(order_by={order!r}, limit={LIMIT}): the pages read after records "
            f"were written past the cursor must show those writes: deleted but returned {gone}, "
            f"returned as before a re-save {stale}, added but not returned {missing}"
        )


__all__ = ["TestQueryConcurrentWrites"]
