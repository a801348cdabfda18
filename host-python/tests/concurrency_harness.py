"""The Python concurrency harness: 16 worker processes consume and release
random amounts across a nested tree with tight limits on two resources,
through ``delimiter.consume`` and :class:`SqlAlchemyStore`, on SQLite,
PostgreSQL and MariaDB; then each database is audited.

Then the same workload twice more through ``delimiter.Combiner`` (the
store's ``read_batch`` and ``commit_batch``): as 16 threads of one process
sharing one combiner, and as 4 processes of 4 threads, each process with a
combiner of its own (so batches of different processes race), each audited
the same way. Every run uses the default retry policy (a 2 s deadline).

The contract (tree, limits, workload, audit, output) is the one of the Rust
harness, ``host-rust/tests/concurrency.rs``, written down in
``conformance/concurrency/README.md``; the audit triggers are the SQL files
beside that README, which both harnesses run.

Prints, per database:
``<db>: oversubscribed=0 lost_updates=0 commits=C conflicts=K retries_exhausted=E``
then ``<db>: with the claim cut down to the project alone, oversubscription
caught: true``, then one line per combined run,
``<db> (16 threads, one combiner): oversubscribed=0 ... retries_exhausted=E
(batches=B mean_batch=M)`` and ``<db> (4 processes x 4 threads, a combiner
each): ...``. PostgreSQL and MariaDB run when DELIMITER_TEST_POSTGRES_URL
and DELIMITER_TEST_MARIADB_URL are set, and say they are skipped otherwise.
Exits 1 on any failure.

``galera`` runs on a multi-writer MariaDB Galera cluster when
DELIMITER_TEST_GALERA_URLS lists its nodes (comma-separated; CI starts one
with ``tools/galera/galera.sh``): worker i writes to node i mod n, the audit
reads node 1 with ``wsrep_sync_wait=1``, and every node must hold the same
usage and generations. MariaDB runs also print the conflicts by cause (and,
on Galera, what the nodes themselves counted).

``DELIMITER_HARNESS_CLAIM=project-only`` (test-only) cuts every claim of the
main runs down to the project alone: the audit must then fail.

Run: ``python host-python/tests/concurrency_harness.py`` (not a pytest
module: its name does not start with ``test_``).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import pathlib
import sys
import time
import traceback
from collections import Counter
from typing import Any, Callable, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _databases import KINDS, Database, skip_reason  # noqa: E402

WORKERS = 16
OPS = 30
RESOURCES = ("servers", "cores")
CUT_TRIES = 5
CLAIM_VAR = "DELIMITER_HARNESS_CLAIM"
GALERA_VAR = "DELIMITER_TEST_GALERA_URLS"
CAUSES = ("generation_miss", "brute_force_abort", "certification_failure", "read_retries")
AUDIT_DIR = pathlib.Path(__file__).resolve().parents[2] / "conformance" / "concurrency"

#: org > eng > {web, batch}; org > ops > {db, cache}. Every node has a finite
#: limit on both resources, and children over-commit their parents.
PROJECTS = [
    ("org", None),
    ("eng", "org"),
    ("web", "eng"),
    ("batch", "eng"),
    ("ops", "org"),
    ("db", "ops"),
    ("cache", "ops"),
]
REGISTERED = {"servers": 5, "cores": 16}
PROJECT_LIMITS = {
    ("org", "servers"): 14,
    ("org", "cores"): 48,
    ("eng", "servers"): 9,
    ("eng", "cores"): 30,
    ("ops", "servers"): 8,
    ("ops", "cores"): 24,
}
TARGETS = ("web", "batch", "db", "cache", "eng", "ops")


def limit_of(project: str, resource: str) -> int:
    return PROJECT_LIMITS.get((project, resource), REGISTERED[resource])


def closure() -> list[tuple[str, str]]:
    """(ancestor, descendant) for every pair, self included."""
    parent = dict(PROJECTS)
    pairs = []
    for p, _ in PROJECTS:
        at: Optional[str] = p
        while at is not None:
            pairs.append((at, p))
            at = parent[at]
    return pairs


def statements(script: str) -> list[str]:
    """The audit files' convention: a statement ends with a semicolon that
    ends a line, and no line inside a statement ends with one."""
    return [s.strip() for s in script.split(";\n") if s.strip()]


# ---- a Galera cluster ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Galera(Database):
    """A namespace on a Galera cluster: setup and audit on the first node
    (``server_url``), worker i on node i mod n."""

    nodes: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, tag: str) -> Galera:
        from sqlalchemy.engine import make_url

        urls = [
            make_url(u.strip()).set(drivername="mysql+pymysql").render_as_string(hide_password=False)
            for u in os.environ[GALERA_VAR].split(",")
            if u.strip()
        ]
        return cls("mariadb", urls[0], tag, tuple(urls))

    def node(self, index: int) -> Database:
        return Database("mariadb", self.nodes[index % len(self.nodes)], self.namespace)

    def synced_engine(self, index: int) -> Any:
        """An engine on node ``index`` whose reads wait until the node has
        applied every write committed before them."""
        return self.node(index).engine(connect_args={"init_command": "SET SESSION wsrep_sync_wait = 1"})

    def diverged_nodes(self) -> int:
        """Nodes whose usage or generations differ from the first node's."""
        states = []
        for i in range(len(self.nodes)):
            engine = self.synced_engine(i)
            try:
                with engine.connect() as conn:
                    states.append(
                        (
                            conn.exec_driver_sql(
                                "SELECT project_id, resource, `usage` FROM delimiter_usage ORDER BY 1, 2"
                            ).all(),
                            conn.exec_driver_sql(
                                "SELECT project_id, generation FROM delimiter_generations ORDER BY 1"
                            ).all(),
                        )
                    )
            finally:
                engine.dispose()
        return sum(1 for state in states[1:] if state != states[0])

    def node_counters(self) -> tuple[int, int]:
        """(brute-force aborts, certification failures) the nodes counted."""
        bf = cert = 0
        for i in range(len(self.nodes)):
            engine = self.node(i).engine()
            try:
                with engine.connect() as conn:
                    for name, value in conn.exec_driver_sql(
                        "SHOW GLOBAL STATUS WHERE Variable_name IN "
                        "('wsrep_local_bf_aborts', 'wsrep_local_cert_failures')"
                    ):
                        if name.endswith("bf_aborts"):
                            bf += int(value)
                        else:
                            cert += int(value)
            finally:
                engine.dispose()
        return bf, cert

    def wait_all_nodes(self) -> None:
        """Returns once every node has applied the setup (the database
        and its tables), so that no worker connects before they arrive."""
        for i in range(len(self.nodes)):
            engine = Database("mariadb", self.nodes[i], "").engine(
                connect_args={"init_command": "SET SESSION wsrep_sync_wait = 1"}
            )
            try:
                with engine.connect() as conn:
                    conn.exec_driver_sql(f"SELECT COUNT(*) FROM {self.namespace}.delimiter_projects").all()
            finally:
                engine.dispose()


# ---- one database run ---------------------------------------------------------------


def prepare(db: Database) -> None:
    """Fresh tables, the tree, the limits and the audit triggers."""
    import delimiter as d
    from sqlalchemy import text

    from delimiter.stores.sqlalchemy import SqlAlchemyStore

    db.create()
    engine = db.engine()
    try:
        store = SqlAlchemyStore(engine)
        store.create_schema()
        for p, parent in PROJECTS:
            store.add_project(d.Project(p, parent))
        store.set_limits(
            d.Limits(
                registered=[d.RegisteredLimit(r, v) for r, v in REGISTERED.items()],
                project=[d.ProjectLimit(p, r, v) for (p, r), v in PROJECT_LIMITS.items()],
            )
        )
        with engine.begin() as conn:
            for name in ("audit.sql", f"audit-{db.kind}.sql"):
                for statement in statements((AUDIT_DIR / name).read_text()):
                    conn.exec_driver_sql(statement)
            conn.execute(
                text("INSERT INTO harness_closure (anchor, project_id) VALUES (:a, :p)"),
                [{"a": a, "p": p} for a, p in closure()],
            )
    finally:
        engine.dispose()
    if isinstance(db, Galera):
        db.wait_all_nodes()


class WorkerStore:
    """The shipped store, with a pause after each read (a service works
    between reading and committing; the pause makes the race window real)
    and, under the test-only switch, the claim cut down to the project (for
    a batch: to the members' projects)."""

    def __init__(self, inner: Any, project_only: bool) -> None:
        self.inner = inner
        self.project_only = project_only
        self.conflicts = 0
        self.after_wait = 0
        self.claimed: list[tuple[str, int]] = []

    def read(self, project: str, resources: list[str]) -> Any:
        snapshot = self.inner.read(project, resources)
        time.sleep(0.0003)
        return snapshot

    def read_batch(self, projects: list[str], resources: list[str]) -> Any:
        snapshot = self.inner.read_batch(projects, resources)
        time.sleep(0.0003)
        return snapshot

    def _count(self, outcome: Any, claim: list[Any]) -> Any:
        import delimiter as d

        if outcome in (d.CommitOutcome.CONFLICT, d.CommitOutcome.CONFLICT_AFTER_WAIT):
            self.conflicts += 1
            self.after_wait += outcome == d.CommitOutcome.CONFLICT_AFTER_WAIT
        elif outcome == d.CommitOutcome.COMMITTED:
            self.claimed.extend((c.project, c.generation) for c in claim)
        return outcome

    def commit(self, claim: list[Any], request: Any) -> Any:
        if self.project_only:
            claim = claim[:1]
        return self._count(self.inner.commit(claim, request), claim)

    def commit_batch(self, claim: list[Any], members: list[Any], *, stores: Any = None) -> Any:
        if self.project_only:
            own = {m.project for m in members}
            claim = [c for c in claim if c.project in own]
        return self._count(self.inner.commit_batch(claim, members), claim)


def work(db: Database, index: int, project_only: bool, start: Any, threads: int) -> dict[str, Any]:
    """One worker's share: OPS random consumes and releases of its own; or,
    with ``threads``, that many threads' shares (threads ``index *
    threads`` on), through one Combiner."""
    from delimiter.stores.sqlalchemy import SqlAlchemyStore

    if isinstance(db, Galera):
        db = db.node(index)
    if threads == 0:
        start.wait()
        return {"commits": [], "claimed": [], "conflicts": 0, "after_wait": 0, "causes": {},
                "refused": 0, "exhausted": 0, "trigger_faults": 0, "batches": 0, "combined": 0}
    engine = db.engine(pool_size=max(threads, 1), max_overflow=0)
    shared = SqlAlchemyStore(engine)
    if threads == 1 and index >= 0:
        report = consume_share(WorkerStore(shared, project_only), index, start, None)
        report["batches"] = report["combined"] = 0
    else:
        import threading

        import delimiter as d

        combiner = d.Combiner(d.Config("nested"))
        local_start = threading.Barrier(threads)
        reports: list[Any] = [None] * threads

        def thread(j: int) -> None:
            try:
                reports[j] = consume_share(
                    WorkerStore(shared, project_only), index * threads + j, start, combiner, local_start
                )
            except BaseException:
                reports[j] = traceback.format_exc()

        pool = [threading.Thread(target=thread, args=(j,)) for j in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        failed = [r for r in reports if isinstance(r, str)]
        if failed:
            raise RuntimeError(failed[0])
        report = {
            key: [x for r in reports for x in r[key]] if key in ("commits", "claimed") else sum(r[key] for r in reports)
            for key in ("commits", "claimed", "conflicts", "after_wait", "refused", "exhausted", "trigger_faults")
        }
        report["causes"] = {}
        stats = combiner.stats
        report["batches"], report["combined"] = stats.batches, stats.combined
    report["causes"] = shared.conflict_causes()
    engine.dispose()
    return report


def consume_share(
    store: WorkerStore, index: int, start: Any, combiner: Any, local_start: Any = None
) -> dict[str, Any]:
    """OPS random consumes and releases of workload ``index``, through
    ``delimiter.consume`` or ``combiner``, with the default retry policy."""
    import delimiter as d

    config = d.Config("nested")
    policy = d.RetryPolicy()
    # The Rust harness's xorshift, so both run the same workload.
    mask = (1 << 64) - 1
    rng = (0x9E3779B97F4A7C15 * (index + 1)) & mask

    def below(n: int) -> int:
        nonlocal rng
        rng ^= (rng << 13) & mask
        rng ^= rng >> 7
        rng ^= (rng << 17) & mask
        return rng % n

    held: dict[str, list[int]] = {}
    commits: list[tuple[str, int, int]] = []
    refused = exhausted = trigger_faults = 0
    store.inner.read("org", list(RESOURCES))  # connect before the start line
    if local_start is None or local_start.wait() == 0:
        start.wait()  # one thread per process at the processes' barrier
    if local_start is not None:
        local_start.wait()
    for _ in range(OPS):
        project = TARGETS[below(len(TARGETS))]
        mine = held.setdefault(project, [0, 0])
        if below(2) == 0 and mine[0] > 0:
            servers = 1 + below(mine[0])
            deltas = (-servers, -(mine[1] * servers // mine[0]))
        else:
            deltas = (1 + below(2), 2 + below(5))
        request = d.Request(project, dict(zip(RESOURCES, deltas)))
        try:
            if combiner is None:
                d.consume(store, request, config, policy)
            else:
                combiner.consume(store, request)
        except d.OverLimit:
            refused += 1
            continue
        except d.RetriesExhausted:
            exhausted += 1
            continue
        except d.StorageError as e:
            # MariaDB Galera 10.11 sometimes fails a statement that fires the
            # harness's own audit trigger with a parse error in the trigger's
            # stored body (1064, "... has an error in its body"; services
            # have no such trigger). The statement failed inside the
            # transaction, which the store rolls back: nothing was written,
            # as for a refusal. Counted and printed.
            if "has an error in its body" not in str(e):
                raise
            trigger_faults += 1
            continue
        mine[0] += deltas[0]
        mine[1] += deltas[1]
        commits.append((project, *deltas))
    return {
        "commits": commits,
        "claimed": store.claimed,
        "conflicts": store.conflicts,
        "after_wait": store.after_wait,
        "refused": refused,
        "exhausted": exhausted,
        "trigger_faults": trigger_faults,
    }


def worker_main(index: int, jobs: Any, results: Any, start: Any) -> None:
    """A worker process, reused across runs: one job per run."""
    while True:
        job = jobs.get()
        if job is None:
            return
        db, project_only, threads = job
        try:
            results.put((index, work(db, index, project_only, start, threads[index])))
        except BaseException:
            results.put((index, traceback.format_exc()))


@dataclasses.dataclass
class Audit:
    oversubscribed: int = 0
    lost_updates: int = 0
    commits: int = 0
    conflicts: int = 0
    after_wait: int = 0
    retries_exhausted: int = 0
    #: Requests a Galera node failed in the audit trigger (written by nobody).
    trigger_faults: int = 0
    batches: int = 0
    combined: int = 0
    causes: Counter[str] = dataclasses.field(default_factory=Counter)
    #: Galera: nodes whose data differ from the first node's.
    diverged: int = 0
    #: Galera: (brute-force aborts, certification failures) the nodes counted.
    node_counted: Optional[tuple[int, int]] = None

    def line(self, kind: str) -> str:
        return (
            f"{kind}: oversubscribed={self.oversubscribed} lost_updates={self.lost_updates} "
            f"commits={self.commits} conflicts={self.conflicts} "
            f"retries_exhausted={self.retries_exhausted}"
        )

    def faults_line(self, kind: str) -> Optional[str]:
        """The line for requests failed in the audit trigger, when any."""
        if not self.trigger_faults:
            return None
        return f"{kind}: {self.trigger_faults} requests failed in the harness's audit trigger and wrote nothing"

    def batches_part(self) -> str:
        mean = self.combined / self.batches if self.batches else 0.0
        return f" (batches={self.batches} mean_batch={mean:.1f}; conflicts after a wait: {self.after_wait})"

    def causes_line(self, kind: str) -> str:
        c = self.causes
        line = (
            f"{kind}: conflicts by cause: generation_miss={c['generation_miss']} "
            f"brute_force_abort={c['brute_force_abort']} certification_failure={c['certification_failure']} "
            f"(reads run again: {c['read_retries']})"
        )
        if self.node_counted is not None:
            bf, cert = self.node_counted
            line += f"; the nodes counted wsrep_local_bf_aborts={bf} wsrep_local_cert_failures={cert}"
        return line


class Pool:
    """WORKERS spawned processes, started once: each run hands every one a
    job, and a barrier lets them start consuming together."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.results = ctx.Queue()
        self.start = ctx.Barrier(WORKERS)
        self.jobs = [ctx.Queue() for _ in range(WORKERS)]
        self.processes = [
            ctx.Process(target=worker_main, args=(i, self.jobs[i], self.results, self.start), daemon=True)
            for i in range(WORKERS)
        ]
        for p in self.processes:
            p.start()

    def run(self, db: Database, project_only: bool, threads: tuple[int, ...]) -> list[dict[str, Any]]:
        """``threads[i]``: worker i's threads (1: one consume at a time
        without a combiner; 0: idle)."""
        for q in self.jobs:
            q.put((db, project_only, threads))
        outcomes: dict[int, Any] = {}
        while len(outcomes) < WORKERS:
            index, outcome = self.results.get(timeout=300)
            outcomes[index] = outcome
        failed = [o for o in outcomes.values() if isinstance(o, str)]
        if failed:
            raise RuntimeError(f"{len(failed)} worker(s) failed; the first:\n{failed[0]}")
        return [outcomes[i] for i in range(WORKERS)]

    def close(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.processes:
            p.join(timeout=10)


#: The shapes of a run: worker i's threads. One consume per process at a
#: time; 16 threads in one process with one combiner; 4 processes of 4
#: threads with a combiner each.
PROCESSES = (1,) * WORKERS
THREADS = (16,) + (0,) * (WORKERS - 1)
MIXED = (4,) * 4 + (0,) * (WORKERS - 4)
SHAPES = (
    ("", PROCESSES),
    (" (16 threads, one combiner)", THREADS),
    (" (4 processes x 4 threads, a combiner each)", MIXED),
)


def run(pool: Pool, db: Database, project_only: bool, threads: tuple[int, ...] = PROCESSES) -> Audit:
    """One run on fresh tables, audited from the database itself."""
    from sqlalchemy import select, text

    from delimiter.stores.sqlalchemy import usage

    prepare(db)
    try:
        counters_before = db.node_counters() if isinstance(db, Galera) else None
        reports = pool.run(db, project_only, threads)
        audit = Audit()
        committed: Counter[tuple[str, str]] = Counter()
        claimed: set[tuple[str, int]] = set()
        for report in reports:
            audit.commits += len(report["commits"])
            audit.conflicts += report["conflicts"]
            audit.after_wait += report["after_wait"]
            audit.retries_exhausted += report["exhausted"]
            audit.trigger_faults += report["trigger_faults"]
            audit.batches += report["batches"]
            audit.combined += report["combined"]
            audit.causes.update(report["causes"])
            for project, servers, cores in report["commits"]:
                committed[(project, "servers")] += servers
                committed[(project, "cores")] += cores
            for pair in report["claimed"]:
                # A generation claimed by two commits: one overwrote the other.
                if tuple(pair) in claimed:
                    audit.lost_updates += 1
                claimed.add(tuple(pair))

        engine = db.synced_engine(0) if isinstance(db, Galera) else db.engine()
        try:
            with engine.connect() as conn:
                recorded = conn.execute(text("SELECT anchor, resource, total FROM harness_audit")).all()
                finals = conn.execute(select(usage.c.project_id, usage.c.resource, usage.c.usage)).all()
        finally:
            engine.dispose()
        # Each commit writes at least one usage row, and each row write
        # records one row per ancestor: an audit that saw nothing is no audit.
        if len(recorded) < audit.commits:
            raise RuntimeError(f"the audit trigger recorded {len(recorded)} rows for {audit.commits} commits")
        # U <= L after every commit (the history the trigger recorded) ...
        audit.oversubscribed += sum(1 for a, r, total in recorded if total > limit_of(a, r))
        # ... and at the end, for every node and resource.
        stored = {(p, r): int(u) for p, r, u in finals}
        for anchor, _ in PROJECTS:
            for r in RESOURCES:
                subtree = sum(stored.get((p, r), 0) for a, p in closure() if a == anchor)
                if subtree > limit_of(anchor, r):
                    audit.oversubscribed += 1
        # Usage equals the sum of successful consumes minus releases.
        keys = {k for k, v in stored.items() if v} | {k for k, v in committed.items() if v}
        audit.lost_updates += sum(1 for k in keys if stored.get(k, 0) != committed.get(k, 0))
        if isinstance(db, Galera):
            audit.diverged = db.diverged_nodes()
            after = db.node_counters()
            assert counters_before is not None
            audit.node_counted = (after[0] - counters_before[0], after[1] - counters_before[1])
        return audit
    finally:
        db.drop()


def main() -> int:
    mode = os.environ.get(CLAIM_VAR, "full")
    if mode not in ("full", "project-only"):
        print(f"{CLAIM_VAR}={mode!r}: expected 'project-only' or unset", file=sys.stderr)
        return 2
    tag = f"delimiter_pyharness_{os.getpid()}"
    dbs: list[tuple[str, Callable[[], Database]]] = []
    for kind in KINDS:
        reason = skip_reason(kind)
        if reason is not None:
            print(f"{kind}: skipped ({reason})", flush=True)
        else:
            dbs.append((kind, lambda kind=kind: Database.new(kind, tag)))  # type: ignore[misc]
    if os.environ.get(GALERA_VAR):
        dbs.append(("galera", lambda: Galera.from_env(tag)))
    else:
        print(f"galera: skipped ({GALERA_VAR} not set)", flush=True)
    began = time.monotonic()
    pool = Pool()
    failed = False
    try:
        for kind, new in dbs:
            audit = run(pool, new(), mode == "project-only")
            print(audit.line(kind) + f" (conflicts after a wait: {audit.after_wait})", flush=True)
            if audit.faults_line(kind):
                print(audit.faults_line(kind), flush=True)
            if kind in ("mariadb", "galera"):
                print(audit.causes_line(kind), flush=True)
            if kind == "galera":
                identical = audit.diverged == 0
                print(f"{kind}: usage and generations identical on all nodes: {str(identical).lower()}", flush=True)
                failed |= not identical
            failed |= audit.oversubscribed > 0 or audit.lost_updates > 0 or audit.commits == 0

            # The same run with the claim cut down to the project must be
            # caught oversubscribing; a few tries, since a race may by chance
            # not happen.
            caught = any(run(pool, new(), True).oversubscribed > 0 for _ in range(CUT_TRIES))
            print(
                f"{kind}: with the claim cut down to the project alone, "
                f"oversubscription caught: {str(caught).lower()}",
                flush=True,
            )
            failed |= not caught

            # The combined runs: the same audit.
            for label, shape in SHAPES[1:]:
                combined = run(pool, new(), mode == "project-only", shape)
                print(combined.line(kind + label) + combined.batches_part(), flush=True)
                if combined.faults_line(kind + label):
                    print(combined.faults_line(kind + label), flush=True)
                failed |= combined.oversubscribed > 0 or combined.lost_updates > 0 or combined.commits == 0
    finally:
        pool.close()
    print(f"harness: {len(dbs)} database(s), {WORKERS} workers, {time.monotonic() - began:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
