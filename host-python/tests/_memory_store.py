"""A store in Python dicts for the combiner and batch tests: the whole tree
in every read (local usage), each commit one compare-and-update under a
lock, with the batch calls, a pause inside each read and commit (so that
concurrent callers overlap: ``time.sleep`` releases the GIL, and yields
under eventlet) and a log of what each commit carried."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

import delimiter as d

#: org (10 servers) > {a, b} (5 each by default), and a second tree
#: solo (3 servers).
TREE = [d.Project("org"), d.Project("a", "org"), d.Project("b", "org"), d.Project("solo")]
LIMITS = d.Limits(
    registered=[d.RegisteredLimit("servers", 5)],
    project=[d.ProjectLimit("org", "servers", 10), d.ProjectLimit("solo", "servers", 3)],
)


class MemoryStore:
    def __init__(
        self,
        tree: Optional[list[d.Project]] = None,
        limits: Optional[d.Limits] = None,
        *,
        pause: float = 0.0,
        fail: Optional[Callable[[d.Request], Optional[BaseException]]] = None,
    ) -> None:
        self.tree = list(TREE if tree is None else tree)
        self.limits = LIMITS if limits is None else limits
        self.usage: dict[tuple[str, str], int] = {}
        self.generations = {p.id: 1 for p in self.tree}
        self.pause = pause
        #: ``fail(request)``: the exception that member's rows raise, or None.
        self.fail = fail
        self.lock = threading.Lock()
        #: One entry per commit that went through: the requests written.
        self.committed: list[list[d.Request]] = []
        self.calls: dict[str, int] = {"read": 0, "commit": 0, "read_batch": 0, "commit_batch": 0}

    def _snapshot(self) -> d.Snapshot:
        with self.lock:
            return d.Snapshot(
                projects=self.tree,
                limits=self.limits,
                usage=[d.UsageEntry(p, r, u) for (p, r), u in sorted(self.usage.items())],
                generations=[d.Generation(p, g) for p, g in sorted(self.generations.items())],
            )

    def _apply(self, claim: list[d.ClaimEntry], members: list[d.Request]) -> Any:
        """Under the lock: compare, then write each member (or report the
        first whose rows fail), all or nothing."""
        if any(self.generations.get(c.project) != c.generation for c in claim):
            return d.CommitOutcome.CONFLICT
        for i, m in enumerate(members):
            error = self.fail(m) if self.fail else None
            if error is not None:
                return d.MemberFailure(i, error)
        usage = dict(self.usage)
        for m in members:
            for x in m.deltas:
                key = (m.project, x.resource)
                usage[key] = usage.get(key, 0) + x.delta
                if usage[key] < 0:
                    raise d.StorageError(f"usage of {key} below zero")
        for c in claim:
            self.generations[c.project] += 1
        for m in members:
            if m.project not in {c.project for c in claim} and any(x.delta for x in m.deltas):
                self.generations[m.project] += 1
        self.usage = usage
        self.committed.append(list(members))
        return d.CommitOutcome.COMMITTED

    def read(self, project: str, resources: list[str]) -> d.Snapshot:
        self.calls["read"] += 1
        time.sleep(self.pause)
        return self._snapshot()

    def commit(self, claim: list[d.ClaimEntry], request: d.Request) -> Any:
        self.calls["commit"] += 1
        time.sleep(self.pause)
        with self.lock:
            outcome = self._apply(claim, [request])
        if isinstance(outcome, d.MemberFailure):
            raise d.StorageError(outcome.message, original=outcome.original)
        return outcome

    def backoff(self, attempt: int, delay_us: int) -> None:
        time.sleep(delay_us / 1e6)


class BatchMemoryStore(MemoryStore):
    """The same, with ``read_batch`` and ``commit_batch``."""

    def read_batch(self, projects: list[str], resources: list[str]) -> d.Snapshot:
        self.calls["read_batch"] += 1
        time.sleep(self.pause)
        return self._snapshot()

    def commit_batch(self, claim: list[d.ClaimEntry], members: list[d.Request]) -> Any:
        self.calls["commit_batch"] += 1
        time.sleep(self.pause)
        with self.lock:
            return self._apply(claim, members)

    def used(self, project: str, resource: str = "servers") -> int:
        return self.usage.get((project, resource), 0)
