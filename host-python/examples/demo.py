"""Delimiter from Python, end to end on the embedded default, SQLite.

A small nested project tree in a SQLite file, eight worker threads consuming
and releasing servers and cores through ``delimiter.consume`` and the
reference store (``SqlAlchemyStore``, one shared by all threads), a refusal
explained, and a final audit of the database: no node over its limit, and
every committed change accounted for. Exits 1 if the audit fails.

Run: ``python host-python/examples/demo.py`` (after ``just wheel``).
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from sqlalchemy import create_engine

import delimiter as d
from delimiter.stores.sqlalchemy import SqlAlchemyStore

WORKERS = 8
OPS_PER_WORKER = 60
RESOURCES = ["servers", "cores"]

# org (servers 10, cores 40)
# ├── eng (servers 8)       children may over-commit their parent:
# │   ├── web (servers 6)   6 + 6 > 8, but usage never may
# │   └── batch (servers 6)
# └── ops (servers 4)
PROJECTS = [
    d.Project("org"),
    d.Project("eng", "org"),
    d.Project("web", "eng"),
    d.Project("batch", "eng"),
    d.Project("ops", "org"),
]
LIMITS = d.Limits(
    registered=[d.RegisteredLimit("servers", 5), d.RegisteredLimit("cores", -1)],
    project=[
        d.ProjectLimit("org", "servers", 10),
        d.ProjectLimit("org", "cores", 40),
        d.ProjectLimit("eng", "servers", 8),
        d.ProjectLimit("web", "servers", 6),
        d.ProjectLimit("batch", "servers", 6),
        d.ProjectLimit("ops", "servers", 4),
    ],
)
CONFIG = d.Config("nested")


def main() -> int:
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="delimiter-demo-"))
    engine = create_engine(f"sqlite:///{folder / 'quota.sqlite'}", pool_size=WORKERS)
    try:
        return demo(engine, folder, began)
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def demo(engine, folder: Path, began: float) -> int:  # type: ignore[no-untyped-def]
    store = SqlAlchemyStore(engine)
    store.create_schema()
    for p in PROJECTS:
        store.add_project(p)
    store.set_limits(LIMITS)
    findings = d.validate(PROJECTS, LIMITS, CONFIG)
    print(f"Delimiter demo (Python): nested tree in {folder / 'quota.sqlite'}")
    print(f"  org > eng > {{web, batch}}, org > ops; validate: {len(findings)} findings")
    print(f"  {WORKERS} threads, {OPS_PER_WORKER} requests each, through delimiter.consume\n")

    lock = threading.Lock()
    committed: Counter[tuple[str, str]] = Counter()
    counts: Counter[str] = Counter()
    example: list[tuple[d.Request, d.OverLimit]] = []

    def worker(index: int) -> None:
        rng = random.Random(index)
        policy = d.RetryPolicy()  # a 2 s deadline, jitter drawn per call
        held: Counter[str] = Counter()  # what this worker holds, to release only its own
        for _ in range(OPS_PER_WORKER):
            project = rng.choice(["web", "batch", "ops", "eng"])
            if rng.randrange(3) == 0 and held[project] > 0:
                servers = -rng.randint(1, held[project])
            else:
                servers = rng.randint(1, 2)
            request = d.Request(project, {"servers": servers, "cores": 4 * servers})
            try:
                done = d.consume(store, request, CONFIG, policy)
            except d.OverLimit as refused:
                with lock:
                    counts["refused"] += 1
                    if not example:
                        example.append((request, refused))
                continue
            except d.RetriesExhausted:
                with lock:
                    counts["retries_exhausted"] += 1
                continue
            held[project] += servers
            with lock:
                counts["admitted"] += 1
                counts["retries"] += done.attempts - 1
                for delta in request.deltas:
                    committed[(project, delta.resource)] += delta.delta

    with ThreadPoolExecutor(WORKERS) as threads:
        for future in [threads.submit(worker, i) for i in range(WORKERS)]:
            future.result()  # a worker's unexpected error stops the demo here
    print(
        f"commits={counts['admitted']} refusals={counts['refused']} "
        f"retries={counts['retries']} retries_exhausted={counts['retries_exhausted']}\n"
    )

    if example:
        request, refused = example[0]
        asked = ", ".join(f"{x.resource} {x.delta:+d}" for x in request.deltas)
        print(f"A refusal, explained (request by {request.project}: {asked}):")
        for v in refused.violations:
            print(
                f"  {v.resource} at {v.project}: usage {v.usage} + delta {v.delta} "
                f"would pass the limit of {v.limit}"
            )
        print()

    # The audit reads the database itself: every node's subtree usage
    # against its limit, and the rows against what the workers saw committed.
    parent = {p.id: p.parent for p in PROJECTS}

    def in_subtree(project: str, anchor: str) -> bool:
        at: Optional[str] = project
        while at is not None:
            if at == anchor:
                return True
            at = parent[at]
        return False

    oversubscribed = 0
    print("Final usage (subtree / limit, headroom):")
    for node in PROJECTS:
        line = f"  {node.id:<6}"
        # Headroom comes back sorted by resource name: look each one up.
        room = {
            h.resource: h.room
            for h in d.headroom(store.read(node.id, RESOURCES), node.id, RESOURCES, CONFIG)
        }
        for resource in RESOURCES:
            used = sum(store.usage(p.id, resource) for p in PROJECTS if in_subtree(p.id, node.id))
            limit = LIMITS.limit_of(node.id, resource)
            if limit != -1 and used > limit:
                oversubscribed += 1
            shown = "unlimited" if limit == -1 else str(limit)
            headroom = "unlimited" if room[resource] is None else str(room[resource])
            line += f"  {resource} {used:>3}/{shown:<9} ({headroom} left)"
        print(line)
    lost_updates = sum(
        1
        for (project, resource) in {(p.id, r) for p in PROJECTS for r in RESOURCES}
        if store.usage(project, resource) != committed[(project, resource)]
    )
    print(f"\naudit: oversubscribed={oversubscribed} lost_updates={lost_updates}")
    print(f"({time.monotonic() - began:.1f} s)")
    return 1 if oversubscribed or lost_updates or not counts["admitted"] else 0


if __name__ == "__main__":
    sys.exit(main())
