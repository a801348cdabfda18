#!/usr/bin/env python3
"""Table 5: Keystone, live. Writes $DELIMITER_BENCH_DIR/keystone.json.

Against the Keystone that ``tools/keystone/keystone.sh`` runs
(``DELIMITER_TEST_KEYSTONE_URL``; requests counted from its access log,
``DELIMITER_TEST_KEYSTONE_ACCESS_LOG``, between marker requests, so every
request is counted: keystoneauth's discovery and tokens too):

- requests per Enforcer construction (the first of the process, then
  another) and per enforce (the first on a new Enforcer, then warm), for
  1, 3 and 10 resources, on a project with an override for every resource
  and one with none; for oslo.limit 2.12, the drop-in
  (``delimiter.compat.oslo_limit``, exact by default and with
  ``cache_ttl``) and ``delimiter.openstack.Enforcer`` (Keystone's flat
  model, and nested);
- warm enforce latency on the same cases (a library that makes requests
  on a warm enforce is timed with them: that is what its call costs);
- the drop-in against oslo.limit on the nine decision scenarios of table 1
  (``benches/decision.py``'s deciders: limits held in each library's
  cache, no Keystone), interleaved in one run.

Without a Keystone (the variables unset) it writes a results file that
says so, or keeps the one a ``just test-keystone`` run wrote. Run with the
venv that has the wheel, openstacksdk and oslo.limit:

    .venv-delimiter/bin/python benches/keystone.py
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / (os.environ.get("DELIMITER_BENCH_DIR") or "target/bench")
TINY = os.environ.get("DELIMITER_BENCH_TINY", "") not in ("", "0")
sys.path.insert(0, str(ROOT / "host-python" / "tests"))

import _keystone as ks  # noqa: E402

WIDTHS = [1, 3, 10]
WARM_CALLS = 2 if TINY else 5
BATCH_MS = 4.0
ROUNDS = 1 if TINY else 30
SLOW_ROUNDS = 10
# The decision comparison is run this many times (interleaved each time);
# each figure is the median of the passes' medians, so that one pass hit by
# load from elsewhere on a shared machine does not decide a row alone.
DECISION_PASSES = 1 if TINY else 3
ROUNDS_DECISION = 1 if TINY else 40  # batches per pass, as benches/decision.py
RESOURCES = [f"resource_{i:02d}" for i in range(10)]


def write(rows, meta):
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / "keystone.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"table": "keystone", "runner": "python", "meta": meta, "rows": rows}, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path} ({len(rows)} rows)")


def libraries():
    from oslo_limit import limit as real

    import delimiter.openstack as ostk
    from delimiter.compat import oslo_limit as compat

    return {
        "oslo.limit": lambda cb: real.Enforcer(cb),
        "drop-in": lambda cb: compat.Enforcer(cb),
        "drop-in, cache_ttl": lambda cb: compat.Enforcer(cb, cache_ttl=3600),
        "delimiter.openstack": lambda cb: ostk.Enforcer(cb, cache_ttl=3600),
        "delimiter.openstack, nested": lambda cb: ostk.Enforcer(cb, cache_ttl=3600, model="nested"),
    }


def usage(project_id, names):
    return {n: 1 for n in names}


def interleaved(functions, rounds_wanted=None):
    """{name: (median, best) ns per call over batches}: batches of ~BATCH_MS (one call when a
    call is longer), the functions timed in turn batch by batch so that
    load from elsewhere falls on all alike; one call each when tiny."""
    sizes, per_call = {}, {}
    for name, f in functions.items():
        # Warm-up and calibration: calls for ~20 ms (at least one).
        t0 = time.perf_counter_ns()
        n = 0
        while True:
            f()
            n += 1
            if TINY or time.perf_counter_ns() - t0 >= 20e6:
                break
        per = per_call[name] = max((time.perf_counter_ns() - t0) / n, 1)
        sizes[name] = 1 if TINY else max(1, int(BATCH_MS * 1e6 / per))
    samples = {name: [] for name in functions}
    # A cell where some library makes Keystone requests on every call (a
    # call of 50 ms or more) gets fewer rounds: its figure is the requests'.
    rounds = rounds_wanted or ROUNDS
    if max(per_call.values()) >= 50e6:
        rounds = min(rounds, SLOW_ROUNDS)
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, f in functions.items():
                n = sizes[name]
                t = time.perf_counter_ns()
                for _ in range(n):
                    f()
                samples[name].append((time.perf_counter_ns() - t) / n)
    finally:
        gc.enable()
    return {name: (statistics.median(s), min(s)) for name, s in samples.items()}


def live_rows():
    conn = ks.admin()
    svc = ks.make_service(conn, {r: 1000 for r in RESOURCES})
    ks.add_domain(conn, svc, "dom")
    ks.add_project(conn, svc, "override", "dom")
    ks.add_project(conn, svc, "no-override", "dom")
    for r in RESOURCES:
        ks.set_limit(conn, svc, "override", r, 500)
    rows = []
    warm = {}
    for library, make in libraries().items():
        ks.configure_oslo_limit(svc.endpoint_id)  # fresh connections, no shared copy
        with ks.counting() as c:
            make(usage)
        rows.append({"kind": "requests", "library": library, "case": "construct-first", "requests": c.n})
        with ks.counting() as c:
            enforcer = warm[library] = make(usage)
        rows.append({"kind": "requests", "library": library, "case": "construct-again", "requests": c.n})
        for width in WIDTHS:
            deltas = {r: 1 for r in RESOURCES[:width]}
            for project in ("override", "no-override"):
                pid = svc.projects[project]
                fresh = make(usage)
                with ks.counting() as c:
                    fresh.enforce(pid, deltas)
                base = {"library": library, "resources": width, "project": project}
                rows.append({"kind": "requests", "case": "first-enforce", "requests": c.n, **base})
                enforcer.enforce(pid, deltas)  # the Enforcer has served this call before
                with ks.counting() as c:
                    for _ in range(WARM_CALLS):
                        enforcer.enforce(pid, deltas)
                rows.append({"kind": "requests", "case": "warm-enforce", "requests": c.n / WARM_CALLS, **base})
        print(f"keystone: {library}: requests counted", flush=True)
    for width in WIDTHS:
        deltas = {r: 1 for r in RESOURCES[:width]}
        for project in ("override", "no-override"):
            pid = svc.projects[project]
            timed = interleaved({lib: (lambda e=e: e.enforce(pid, deltas)) for lib, e in warm.items()})
            for library, (median, _best) in timed.items():
                rows.append(
                    {"kind": "latency", "library": library, "resources": width, "project": project, "median_ns": round(median)}
                )
            print(f"keystone: latency {width} resource(s), {project}: " + ", ".join(
                f"{lib} {ns[0] / 1e3:.2f} us" for lib, ns in timed.items()), flush=True)
    return rows


def decision_rows():
    """The drop-in against oslo.limit on table 1's nine scenarios."""
    scen_path = BENCH_DIR / "scenarios.json"
    if not scen_path.exists():
        import subprocess

        subprocess.run([sys.executable, str(ROOT / "benches" / "scenarios.py")], check=True)
    import decision  # benches/decision.py: its deciders and interleaved timing

    scenarios = json.loads(scen_path.read_text())
    rows = []
    for case in scenarios["decision"]:
        oslo = decision.OsloLimit(case)
        try:
            passes = [
                interleaved({"wheel-oslo-compat": decision.compat_decider(case), "oslo.limit": oslo.decide}, ROUNDS_DECISION)
                for _ in range(DECISION_PASSES)
            ]
        finally:
            oslo.close()
        for impl in ("wheel-oslo-compat", "oslo.limit"):
            rows.append(
                {
                    "kind": "decision",
                    "scenario": case["scenario"],
                    "resources": case["resources"],
                    "impl": impl,
                    "median_ns": round(statistics.median(p[impl][0] for p in passes)),
                    "best_ns": round(min(p[impl][1] for p in passes)),
                    "pass_medians_ns": [round(p[impl][0]) for p in passes],
                }
            )
        print(
            f"{case['scenario']}/{case['resources']}: "
            + ", ".join(
                f"{impl} median {' / '.join(f'{p[impl][0] / 1e3:.2f}' for p in passes)} us, "
                f"best {min(p[impl][1] for p in passes) / 1e3:.2f} us"
                for impl in ("wheel-oslo-compat", "oslo.limit")
            ),
            flush=True,
        )
    return rows


def main():
    meta = {
        "tiny": TINY,
        "python": sys.version.split()[0],
        "oslo.limit": metadata.version("oslo.limit"),
        "openstacksdk": metadata.version("openstacksdk"),
        "keystone": "30.0.0 (tools/keystone/keystone.sh: gunicorn, 1 worker, SQLite, 127.0.0.1)",
        "method": (
            "requests: lines of Keystone's access log between two marker requests (every HTTP "
            "request, keystoneauth's discovery and token included); warm-enforce is the mean over "
            f"{WARM_CALLS} calls on an Enforcer that has served the same call before. latency: "
            "median over batches of ~%g ms of one warm enforce (one call per batch when longer; "
            "~20 ms of warm-up calls first), the "
            "libraries interleaved batch by batch, requests included where a library makes them "
            "(%d rounds, %d where some call takes 50 ms or more). decision: benches/decision.py's "
            "deciders (StaticLimits / LimitFixture, no Keystone), the two interleaved batch by batch "
            "(batches of ~%g ms, 40 per pass, after ~20 ms of warm-up calls), %d passes; median: the median "
            "of the passes' medians; best: the fastest batch of all passes (the figure least "
            "disturbed by other load on a shared machine)"
            % (BATCH_MS, ROUNDS, SLOW_ROUNDS, BATCH_MS, DECISION_PASSES)
        ),
    }
    if not ks.URL or not ks.ACCESS_LOG:
        reason = "no Keystone: DELIMITER_TEST_KEYSTONE_URL / _ACCESS_LOG unset (just bench-keystone starts one)"
        existing = BENCH_DIR / "keystone.json"
        if existing.exists():
            old = json.loads(existing.read_text())
            if old.get("rows") and bool(old.get("meta", {}).get("tiny")) == TINY:
                print(f"keystone bench: skipped ({reason}); keeping {existing} from an earlier run")
                return
        print(f"keystone bench: SKIPPED ({reason})")
        write([], {**meta, "skipped": reason})
        return
    rows = live_rows() + decision_rows()
    write(rows, meta)


if __name__ == "__main__":
    main()
