"""Start-up cost, as whole processes: ``import delimiter`` plus the first
decision, against bare Python and against ``import oslo_limit``.

A service pays this on every worker start (and every CLI call), so it is
measured the way a user meets it: a fresh interpreter each run, wall time
from spawn to exit. The cases run interleaved (round-robin), so that drift
of a shared machine falls on every case alike; the median of the runs is
reported and every case's ratio to bare Python.

The compiled component is cached on disk (``~/.cache/delimiter``): the
warm case is what every start but a machine's first pays. The cold case
points ``DELIMITER_CACHE_DIR`` at an empty directory each run, so it pays
the compilation, as the very first start on a machine does.

Writes ``target/bench/startup.json`` (see benches/README.md).
``DELIMITER_BENCH_TINY=1`` runs each case once.

Run with the venv that has the wheel and oslo.limit installed:
``.venv-delimiter/bin/python benches/startup.py``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A relative DELIMITER_BENCH_DIR is taken from the repository root, as by
# every runner; the tiny run of `just test` writes elsewhere than `just bench`.
OUT = ROOT / (os.environ.get("DELIMITER_BENCH_DIR") or "target/bench") / "startup.json"

# The first decision: the smallest nested snapshot that makes the component
# load, instantiate and decide (the same work `import delimiter` defers).
FIRST_DECISION = """
import delimiter as d
s = d.Snapshot(
    projects=[d.Project("org"), d.Project("a", parent="org")],
    limits=d.Limits(project=[d.ProjectLimit("org", "servers", 10)]),
    usage=[d.UsageEntry("a", "servers", 9)],
    generations=[d.Generation("org", 4), d.Generation("a", 7)],
)
assert d.evaluate(s, d.Request("a", {"servers": 1}), d.Config(missing_limit="unlimited")).admitted
"""

# oslo.limit's counterpart of a first decision needs Keystone (or its test
# fixture, which pulls in `fixtures` and mocks); importing it is what every
# service pays before talking to Keystone, so that is the comparison the
# issue asks for.
CASES: list[tuple[str, str, bool]] = [
    # (case, code, cold component cache)
    ("bare python (python -c pass)", "pass", False),
    # The package itself is empty; services import its Enforcer module.
    ("import oslo_limit", "import oslo_limit", False),
    ("from oslo_limit import limit (its Enforcer)", "from oslo_limit import limit", False),
    ("import delimiter", "import delimiter", False),
    ("import delimiter + first decision", FIRST_DECISION, False),
    ("import delimiter + first decision, cold cache", FIRST_DECISION, True),
]


def run_once(code: str, cold: bool, cache_root: Path) -> float:
    env = dict(os.environ)
    if cold:
        # A fresh, empty cache directory: this run compiles the component.
        env["DELIMITER_CACHE_DIR"] = tempfile.mkdtemp(dir=cache_root)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return (time.perf_counter() - started) * 1000.0


def main() -> int:
    tiny = os.environ.get("DELIMITER_BENCH_TINY") == "1"
    runs = 1 if tiny else int(os.environ.get("DELIMITER_BENCH_STARTUP_RUNS", "30"))
    # The cold case compiles (~0.1-0.2 s): fewer runs keep the bench short.
    cold_runs = 1 if tiny else max(3, runs // 5)

    with tempfile.TemporaryDirectory(prefix="delimiter-startup-") as tmp:
        cache_root = Path(tmp)
        # Warm the real cache once, untimed, so that the warm cases measure
        # a machine's second and later starts.
        run_once(FIRST_DECISION, False, cache_root)
        times: dict[str, list[float]] = {case: [] for case, _, _ in CASES}
        for i in range(runs):
            for case, code, cold in CASES:
                if cold and i >= cold_runs:
                    continue
                times[case].append(run_once(code, cold, cache_root))

    base = statistics.median(times[CASES[0][0]])
    rows = []
    for case, _, _ in CASES:
        median = statistics.median(times[case])
        rows.append(
            {
                "case": case,
                "median_ms": round(median, 3),
                "runs": len(times[case]),
                "ratio_to_bare_python": round(median / base, 2),
            }
        )
        print(f"{case:50} {median:9.1f} ms  x{median / base:5.2f}  ({len(times[case])} runs)")

    import delimiter  # noqa: PLC0415 - only for its version, after timing

    meta = {
        "method": (
            "whole processes, spawn to exit, wall clock (time.perf_counter around "
            "subprocess.run); cases interleaved round-robin; median of the runs. "
            "Warm = the compiled component is in the on-disk cache (every start "
            "but a machine's first); cold = an empty DELIMITER_CACHE_DIR per run, "
            "so the component is compiled."
        ),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "delimiter": delimiter.__version__,
        "oslo.limit": _dist_version("oslo.limit"),
        "tiny": tiny,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps({"table": "startup", "runner": "python", "meta": meta, "rows": rows}, indent=2)
        + "\n"
    )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version(name)


if __name__ == "__main__":
    sys.exit(main())
