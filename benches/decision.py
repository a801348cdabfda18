#!/usr/bin/env python3
"""Tables 1 and 3 for Python: the wheel, its oslo.limit drop-in, and the
real oslo.limit 2.12 on the same scenarios (target/bench/scenarios.json).

Writes target/bench/decision-python.json (impls ``wheel``,
``wheel-prepared``, ``wheel-oslo-compat``, ``oslo.limit``) and target/bench/scale-python.json
(impl ``wheel``). Run it with the venv that has the wheel and oslo.limit:

    .venv-delimiter/bin/python benches/decision.py

What one decision includes (the same work a service does per request, for
each library; reading storage is not timed, its result is handed over
ready-made by a callback for all three):

- ``oslo.limit``: ``Enforcer.enforce(project_id, deltas)``: argument checks,
  the limits looked up in the enforcer's cache (``cache=True``, the default;
  filled from oslo.limit's own ``LimitFixture`` before timing, so no network
  or mock is timed), the usage callback called, the comparison, and the
  exception on a refusal (none here: every scenario is admitted).
- ``wheel-oslo-compat``: the same call on ``delimiter.compat.oslo_limit``
  with ``StaticLimits``.
- ``wheel``: what a service using the native API does per decision: the
  tree (``Project``s) and ``Limits`` are built once and kept, as oslo.limit
  keeps its limits; per decision the usage and generations are read (a
  callback returning rows as a database driver does: tuples), turned into
  ``UsageEntry`` / ``Generation`` objects, a ``Snapshot`` and a ``Request``
  are built, ``delimiter.evaluate`` is called (one component instance per
  thread, reused) and ``decision.admitted`` is read.
- ``wheel-prepared``: the same service on ``delimiter.Prepared``: tree and
  limits prepared once and kept (as oslo.limit keeps its limits); per
  decision the path's numbers read (a callback returning them in the shape
  ``Prepared.evaluate`` takes, as oslo.limit's usage callback returns the
  dict ``enforce`` takes; a store's path query yields them in path order,
  so no ``path()`` call per decision), ``Prepared.evaluate``, and
  ``decision.admitted`` read.

oslo.limit has no nested model: on the depth-3 and depth-10 scenarios it
(and the drop-in) checks only the requesting project's own limits against
its own usage, while the wheel decides the nested model over the whole
tree. The rows say what each library does, not the same amount of work.

Timing: ``time.perf_counter_ns`` around batches of calls (each batch about
``BATCH_MS`` ms), the median over batches of the time per call; the
implementations of one scenario are interleaved batch by batch so that
load from other processes on the machine falls on all of them alike. The
garbage collector is paused while timing, as ``timeit`` does.
``DELIMITER_BENCH_TINY=1``: one call per case, not a measurement.
"""

import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A relative DELIMITER_BENCH_DIR is taken from the repository root, like the
# Rust benches (which cargo runs from benches/).
BENCH_DIR = ROOT / (os.environ.get("DELIMITER_BENCH_DIR") or "target/bench")
TINY = os.environ.get("DELIMITER_BENCH_TINY", "") not in ("", "0")

BATCH_MS = 4.0
ROUNDS = 40  # batches per implementation and scenario
WARMUP_S = 0.05
SCALE_SAMPLES = 10

import delimiter as d  # noqa: E402
from machine import cpu_model  # noqa: E402
from delimiter.compat import oslo_limit as compat  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_limit import exception as oslo_exception  # noqa: E402
from oslo_limit import fixture as oslo_fixture  # noqa: E402
from oslo_limit import limit as oslo_limit  # noqa: E402

# oslo.limit finds the service's endpoint in Keystone (here the fixture's
# fake) by id; it must be configured, as in a real service.
cfg.CONF([], project="delimiter-bench", default_config_files=[])
cfg.CONF.set_override("endpoint_id", "ENDPOINT_ID", group="oslo_limit")
logging.getLogger("oslo_limit").setLevel(logging.CRITICAL)

# Fuel and memory bound a runaway guest; raised for the scale table so the
# 100,000-project local tree fits (not part of what is measured).
SCALE_FUEL = 2**62
SCALE_MEMORY = 2**31


def meta_common():
    uname = platform.uname()
    cpu = cpu_model()
    return {
        "cpu": cpu,
        "cpus": str(os.cpu_count()),
        "os": f"{uname.system} {uname.release} {uname.machine}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "delimiter": f"{d.__version__} (wheel, {d.load_info()['source']} component)",
        "oslo.limit": metadata.version("oslo.limit"),
        "openstacksdk": metadata.version("openstacksdk"),
        "tiny": TINY,
    }


# ---- the three implementations ---------------------------------------------


def wheel_decider(case):
    """A service on the native API: tree and limits kept, usage and
    generations read per decision (rows), Snapshot and Request built, one
    evaluate."""
    snap = case["snapshot"]
    projects = [d.Project(p["id"], p.get("parent")) for p in snap["projects"]]
    limits = d.Limits(
        [d.RegisteredLimit(l["resource"], l["limit"]) for l in snap.get("registered_limits", [])],
        [d.ProjectLimit(l["project"], l["resource"], l["limit"]) for l in snap.get("project_limits", [])],
    )
    usage_rows = [(u["project"], u["resource"], u["usage"]) for u in snap["usage"]["local"]]
    generation_rows = [(g["project"], g["generation"]) for g in snap["generations"]]
    config = d.Config(model=case["config"]["model"])
    project = case["request"]["project"]
    deltas = {x["resource"]: x["delta"] for x in case["request"]["deltas"]}

    # The storage reads, ready-made (not what is measured).
    def read_usage(project_id, resources):
        return usage_rows

    def read_generations(project_id):
        return generation_rows

    UsageEntry, Generation, Snapshot, Request, evaluate = (
        d.UsageEntry,
        d.Generation,
        d.Snapshot,
        d.Request,
        d.evaluate,
    )

    def decide():
        usage = [UsageEntry(p, r, u) for p, r, u in read_usage(project, deltas)]
        generations = [Generation(p, g) for p, g in read_generations(project)]
        snapshot = Snapshot(projects, limits, usage, generations)
        decision = evaluate(snapshot, Request(project, deltas), config)
        return decision.admitted

    # The same decision without the per-decision building: the split.
    prebuilt = d.Snapshot(
        projects,
        limits,
        [d.UsageEntry(*u) for u in usage_rows],
        [d.Generation(*g) for g in generation_rows],
    )
    request = d.Request(project, deltas)

    def evaluate_only():
        return evaluate(prebuilt, request, config).admitted

    def build_only():
        usage = [UsageEntry(p, r, u) for p, r, u in read_usage(project, deltas)]
        generations = [Generation(p, g) for p, g in read_generations(project)]
        Snapshot(projects, limits, usage, generations)
        Request(project, deltas)

    decision = evaluate(prebuilt, request, config)
    assert decision.admitted, (case["description"], decision)
    depth = path_length(snap, project) if case["config"]["model"] != "flat" else 1
    assert len(decision.claim) == depth, (case["description"], decision)
    return decide, evaluate_only, build_only


def prepared_decider(case):
    """A service on ``delimiter.Prepared``: the tree and limits prepared
    once and kept (as oslo.limit keeps its limits); per decision the path is
    asked for, the path's numbers read (a callback returning what the
    service's query would: its own usage per resource, and per path node a
    row of its generation and subtree usage per resource, in path order),
    flattened into the lists ``evaluate`` takes, one ``evaluate``, and
    ``decision.admitted`` read."""
    snap = case["snapshot"]
    projects = [d.Project(p["id"], p.get("parent")) for p in snap["projects"]]
    limits = d.Limits(
        [d.RegisteredLimit(l["resource"], l["limit"]) for l in snap.get("registered_limits", [])],
        [d.ProjectLimit(l["project"], l["resource"], l["limit"]) for l in snap.get("project_limits", [])],
    )
    config = d.Config(model=case["config"]["model"])
    prepared = d.Prepared(projects, limits, config)
    project = case["request"]["project"]
    deltas = {x["resource"]: x["delta"] for x in case["request"]["deltas"]}

    # What the store holds: local usage, subtree sums and generations. The
    # sums are what a service keeps or aggregates in its query; computing
    # them here is setup, not timed.
    parent = {p["id"]: p.get("parent") for p in snap["projects"]}
    local_usage = {(u["project"], u["resource"]): u["usage"] for u in snap["usage"]["local"]}
    subtree_usage = {}
    for (p, r), u in local_usage.items():
        while p is not None:
            subtree_usage[(p, r)] = subtree_usage.get((p, r), 0) + u
            p = parent[p]
    generation_of = {g["project"]: g["generation"] for g in snap["generations"]}
    path = prepared.path(project)
    resources = list(deltas)
    local = [local_usage.get((project, r), 0) for r in resources]
    subtree = [subtree_usage.get((p, r), 0) for p in path for r in resources]
    generations = [generation_of.get(p, 0) for p in path]

    # The storage read, ready-made (not what is measured), in the shape
    # ``evaluate`` takes, as oslo.limit's usage callback returns the dict
    # ``enforce`` takes. A store's one path query (the project up to the
    # root, as SqlAlchemyStore reads it) yields the rows in path order, so
    # a service need not call ``path()`` per decision.
    def read_path(project, resources):
        return local, subtree, generations

    evaluate = prepared.evaluate

    def decide():
        local, subtree, generations = read_path(project, deltas)
        return evaluate(project, deltas, local, subtree, generations).admitted

    decision = evaluate(project, deltas, local, subtree, generations)
    assert decision.admitted, (case["description"], decision)
    want = d.evaluate(build_snapshot(snap), d.Request(project, deltas), config)
    assert decision == want, (case["description"], decision, want)
    return decide


def path_length(snapshot, project):
    parent = {p["id"]: p.get("parent") for p in snapshot["projects"]}
    n = 0
    while project is not None:
        n += 1
        project = parent[project]
    return n


def oslo_usage_callback(usage):
    def usage_callback(project_id, resource_names):
        return usage

    return usage_callback


def compat_decider(case):
    o = case["oslo"]
    enforcer = compat.Enforcer(
        oslo_usage_callback(o["usage"]),
        limits=compat.StaticLimits(o["registered_limits"], o["project_limits"]),
    )
    project_id, deltas = o["project_id"], o["deltas"]

    def decide():
        enforcer.enforce(project_id, deltas)

    decide()  # admitted: raises ProjectOverLimit otherwise
    return decide


class OsloLimit:
    """oslo.limit's Enforcer with limits from its own LimitFixture. The
    fixture stays set up for the whole timing (it only mocks the Keystone
    connection); with cache=True the first enforce fills the cache and the
    timed ones never reach the mock."""

    def __init__(self, case):
        o = case["oslo"]
        self.fixture = oslo_fixture.LimitFixture(o["registered_limits"], o["project_limits"])
        self.fixture.setUp()
        enforcer = oslo_limit.Enforcer(oslo_usage_callback(o["usage"]))
        project_id, deltas = o["project_id"], o["deltas"]

        def decide():
            enforcer.enforce(project_id, deltas)

        try:
            decide()
        except oslo_exception.ProjectOverLimit as e:  # pragma: no cover
            raise AssertionError(f"{case['description']}: oslo.limit refused: {e}")
        self.decide = decide

    def close(self):
        self.fixture.cleanUp()


# ---- timing ------------------------------------------------------------------


def calibrate(f):
    """Calls per batch so that a batch takes about BATCH_MS (after warm-up)."""
    end = time.perf_counter() + WARMUP_S
    n = 0
    while time.perf_counter() < end:
        f()
        n += 1
    t = time.perf_counter_ns()
    for _ in range(10):
        f()
    per_call = max((time.perf_counter_ns() - t) / 10, 1)
    return max(1, int(BATCH_MS * 1e6 / per_call))


def batch(f, n):
    t = time.perf_counter_ns()
    for _ in range(n):
        f()
    return (time.perf_counter_ns() - t) / n


def measure_interleaved(functions):
    """{name: (median ns per call, batches)} for callables timed in turn."""
    if TINY:
        out = {}
        for name, f in functions.items():
            t = time.perf_counter_ns()
            f()
            out[name] = (time.perf_counter_ns() - t, 1)
        return out
    sizes = {name: calibrate(f) for name, f in functions.items()}
    samples = {name: [] for name in functions}
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for name, f in functions.items():
                samples[name].append(batch(f, sizes[name]))
    finally:
        gc.enable()
    return {name: (statistics.median(s), len(s)) for name, s in samples.items()}


# ---- tables ------------------------------------------------------------------


def write(name, table, runner, meta, rows):
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"table": table, "runner": runner, "meta": meta, "rows": rows}, indent=2) + "\n"
    )
    tmp.replace(path)
    print(f"wrote {path} ({len(rows)} rows)")


def decision_table(scenarios):
    rows, splits = [], []
    for case in scenarios["decision"]:
        wheel, evaluate_only, build_only = wheel_decider(case)
        oslo = OsloLimit(case)
        try:
            timed = measure_interleaved(
                {
                    "wheel": wheel,
                    "wheel-prepared": prepared_decider(case),
                    "wheel-oslo-compat": compat_decider(case),
                    "oslo.limit": oslo.decide,
                    "evaluate-only": evaluate_only,
                    "build-only": build_only,
                }
            )
        finally:
            oslo.close()
        label = f"{case['scenario']}/{case['resources']}"
        for impl in ("wheel", "wheel-prepared", "wheel-oslo-compat", "oslo.limit"):
            median, samples = timed[impl]
            rows.append(
                {
                    "scenario": case["scenario"],
                    "resources": case["resources"],
                    "impl": impl,
                    "median_ns": round(median),
                    "samples": samples,
                }
            )
        splits.append(
            f"{label}: build {timed['build-only'][0] / 1e3:.1f} us + evaluate "
            f"{timed['evaluate-only'][0] / 1e3:.1f} us"
        )
        print(
            f"{label:12} "
            + "  ".join(f"{k} {v[0] / 1e3:8.2f} us" for k, v in timed.items()),
            flush=True,
        )
    meta = meta_common()
    meta.update(
        {
            "method": (
                "one decision = the work a service does per request with each library; storage "
                "reads are callbacks returning ready-made data (not timed work). oslo.limit: "
                "Enforcer.enforce(project_id, deltas), limits from oslo.limit's LimitFixture held "
                "in its cache (cache=True), usage callback returns a dict. wheel-oslo-compat: the "
                "same call on delimiter.compat.oslo_limit with StaticLimits. wheel: projects and "
                "Limits built once and kept; per decision usage rows and generation rows (tuples, "
                "as a DB driver returns them) become UsageEntry/Generation objects, a Snapshot and "
                "a Request are built, delimiter.evaluate runs (per-thread component instance, "
                "reused) and decision.admitted is read. wheel-prepared: delimiter.Prepared built "
                "once from the projects and Limits; per decision the path's numbers read (a callback "
                "returning local, subtree and generations lists in path order, as a store's path "
                "query yields them and as oslo.limit's usage callback returns its dict), "
                "Prepared.evaluate, decision.admitted read"
            ),
            "oslo_model": (
                "oslo.limit 2.12 has no nested model: on depth-3 and depth-10 it (and the drop-in) "
                "enforces only the requesting project's own limits (flat), while the wheel decides "
                "the nested model over the whole tree (usage of every project, every ancestor's limit)"
            ),
            "timing": (
                "time.perf_counter_ns around batches of ~%g ms; median over %d batches of the time "
                "per call; implementations interleaved batch by batch; gc paused while timing"
                % (BATCH_MS, ROUNDS)
                if not TINY
                else "one call per case (DELIMITER_BENCH_TINY): not a measurement"
            ),
            "wheel_split": "; ".join(splits),
        }
    )
    write("decision-python", "decision", "python", meta, rows)


def scale_table(scenarios):
    rows = []
    for case in scenarios["scale"]:
        snap = case["snapshot"]
        snapshot = build_snapshot(snap)
        request = d.Request(case["request"]["project"], {x["resource"]: x["delta"] for x in case["request"]["deltas"]})
        config = d.Config(
            model=case["config"]["model"], max_depth=case["config"].get("max_depth", d.DEFAULT_MAX_DEPTH)
        )

        def decide():
            return d.evaluate(snapshot, request, config, fuel=SCALE_FUEL, memory_limit=SCALE_MEMORY)

        assert decide().admitted, case["description"]
        if TINY:
            times = [measure_once(decide)]
        else:
            # Each call is long enough (>= tens of us) to time one by one,
            # in batches for the small ones.
            n = calibrate(decide)
            gc.collect()
            gc.disable()
            try:
                times = [batch(decide, n) for _ in range(max(SCALE_SAMPLES, min(ROUNDS, 40 if n > 1 else SCALE_SAMPLES)))]
            finally:
                gc.enable()
        median = statistics.median(times)
        rows.append(
            {
                "shape": case.get("shape", "bushy"),
                "projects": case["projects"],
                "usage_form": case["usage_form"],
                "impl": "wheel",
                "median_ns": round(median),
                "samples": len(times),
            }
        )
        shape = case.get("shape", "bushy")
        print(f"scale {shape:5} {case['projects']:>7} {case['usage_form']:5} wheel {median / 1e3:10.1f} us", flush=True)
    meta = meta_common()
    meta.update(
        {
            "method": (
                "one delimiter.evaluate(snapshot, request, config) on a Snapshot built once (as the "
                "Rust rows: inputs already in the implementation's types), fuel and memory limit "
                "raised out of the way; local: every project's usage, summed by the core per call; "
                "path: the path's projects, limits, pre-summed subtree usage and generations"
            ),
            "timing": (
                "time.perf_counter_ns around batches (one call per batch when a call is longer "
                "than a batch), median over batches"
                if not TINY
                else "one call per case (DELIMITER_BENCH_TINY): not a measurement"
            ),
        }
    )
    write("scale-python", "scale", "python", meta, rows)


def measure_once(f):
    t = time.perf_counter_ns()
    f()
    return time.perf_counter_ns() - t


def build_snapshot(snap):
    usage = snap.get("usage", {"local": []})
    if "local" in usage:
        u = [d.UsageEntry(e["project"], e["resource"], e["usage"]) for e in usage["local"]]
    else:
        p = usage["path"]
        u = d.PathUsage(
            [d.ResourceUsage(e["resource"], e["usage"]) for e in p.get("local", [])],
            [d.UsageEntry(e["project"], e["resource"], e["usage"]) for e in p.get("subtree", [])],
        )
    return d.Snapshot(
        [d.Project(p["id"], p.get("parent")) for p in snap.get("projects", [])],
        d.Limits(
            [d.RegisteredLimit(l["resource"], l["limit"]) for l in snap.get("registered_limits", [])],
            [d.ProjectLimit(l["project"], l["resource"], l["limit"]) for l in snap.get("project_limits", [])],
        ),
        u,
        [d.Generation(g["project"], g["generation"]) for g in snap.get("generations", [])],
    )


def main():
    path = BENCH_DIR / "scenarios.json"
    if not path.exists():
        sys.exit(f"{path}: missing; write it first with `python3 benches/scenarios.py`")
    scenarios = json.loads(path.read_text())
    which = set(sys.argv[1:]) or {"decision", "scale"}
    if "decision" in which:
        decision_table(scenarios)
    if "scale" in which:
        scale_table(scenarios)


if __name__ == "__main__":
    main()
