"""Requests per operation of the S3 session store, counted from botocore events.

Usage: python benchmarks/s3_cost.py [--endpoint-url URL] [--interval N]

Without --endpoint-url it starts an in-process moto S3 server (serialized request handling, port 0).
Every HTTP request the store's client sends is counted (the ``before-send`` event, so retries
count), by operation, and PUTs by what they write: a session log, the claim log (event ids), or
other markers. Figures are request counts, not times, so they do not depend on the machine.

Cases:
  - appending one batch of 1, 10 and 100 new events to a session, from a warm instance;
  - reading a session's events after 10, 100 and 1,000 commits: cold (a fresh instance), tailing
    with ``after`` when nothing is new, and tailing after one more commit;
  - appending one batch of 1, 10 and 100 new events to a new session from a cold instance (a fresh
    one), which first reads the claim log (by then over a thousand records long).
"""

from __future__ import annotations

import argparse
import collections
import os
import uuid
from typing import Any

from pytest_asm_contract._contract.model import Event, EventType
from pytest_asm_contract._faults.botocore import RequestCounter
from reference_stores.s3 import S3SessionStore

BUCKET = "asm-bench"


class PutKinds:
    """Counts PutObject calls by the kind of object their key names."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.prefix = client, prefix
        self.kinds: collections.Counter[str] = collections.Counter()

    def _seen(self, params: dict[str, Any], **_: Any) -> None:
        kind = str(params.get("Key", ""))[len(self.prefix) :].split("/", 1)[0]
        self.kinds[
            {"s": "log", "c": "claim log", "x": "session index", "r": "run marker"}.get(kind, kind)
        ] += 1

    def __enter__(self) -> PutKinds:
        self.client.meta.events.register("before-parameter-build.s3.PutObject", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister("before-parameter-build.s3.PutObject", self._seen)


def events(session_id: str, count: int) -> list[Event]:
    return [
        Event(type=EventType.MESSAGE_SENT, session_id=session_id, data={"i": i})
        for i in range(count)
    ]


def describe(counter: RequestCounter, puts: PutKinds | None = None) -> str:
    ops = ", ".join(f"{op} {n}" for op, n in sorted(counter.by_operation.items()))
    kinds = ""
    if puts is not None and puts.kinds:
        kinds = "; PUTs: " + ", ".join(f"{k} {n}" for k, n in sorted(puts.kinds.items()))
    return f"{counter.total:4d} requests ({ops}{kinds})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default=os.environ.get("ASM_S3_ENDPOINT_URL"))
    parser.add_argument("--interval", type=int, default=16, help="snapshot_interval of the store")
    options = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = None
    endpoint = options.endpoint_url
    if not endpoint:
        from reference_stores.s3.moto_server import serialized_moto_server

        server = serialized_moto_server(port=0)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
    prefix = f"bench-{uuid.uuid4().hex}/"

    def store() -> S3SessionStore:
        return S3SessionStore(
            endpoint_url=endpoint,
            bucket=BUCKET,
            prefix=prefix,
            create_bucket=True,
            snapshot_interval=options.interval,
        )

    try:
        writer = store()
        client = writer.asm_fault_target()
        print(f"S3 session store on {endpoint}; snapshot_interval={options.interval}")
        print("\nappend_events, one batch of new events to one session (warm instance):")
        for size in (1, 10, 100):
            session_id = f"batch-{size}"
            writer.append_events(events(session_id, 1))  # warm: the session is cached
            with RequestCounter(client) as counter, PutKinds(client, prefix) as puts:
                writer.append_events(events(session_id, size))
            print(f"  batch of {size:3d}: {describe(counter, puts)}")

        print("\nget_events after N commits (single-event appends):")
        for commits in (10, 100, 1000):
            session_id = f"read-{commits}"
            tail = store()
            for _ in range(commits):
                writer.append_events(events(session_id, 1))
            tail.get_events(session_id)  # the tailing reader is up to date
            cold = store()
            with RequestCounter(cold.asm_fault_target()) as counter:
                assert len(cold.get_events(session_id)) == commits
            print(f"  {commits:4d} commits, cold instance:         {describe(counter)}")
            with RequestCounter(tail.asm_fault_target()) as counter:
                assert tail.get_events(session_id, after=commits) == []
            print(f"  {commits:4d} commits, tail, nothing new:     {describe(counter)}")
            writer.append_events(events(session_id, 1))
            with RequestCounter(tail.asm_fault_target()) as counter:
                assert len(tail.get_events(session_id, after=commits)) == 1
            print(f"  {commits:4d} commits, tail, one new commit:  {describe(counter)}")
            for instance in (tail, cold):
                instance.close()

        # By now the claim log holds over a thousand records: a cold writer reads a bounded part.
        print("\nappend_events, one batch of new events to a new session (cold instance):")
        for size in (1, 10, 100):
            fresh = store()
            target = fresh.asm_fault_target()
            with RequestCounter(target) as counter, PutKinds(target, prefix) as puts:
                fresh.append_events(events(f"cold-{size}", size))
            print(f"  batch of {size:3d}: {describe(counter, puts)}")
            fresh.close()
        writer.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
