"""Renders BENCHMARKS.md from the runners' results in ``target/bench/*.json``.

Every figure in the page comes from those files, written by one ``just
bench`` run on this machine; nothing here is typed in by hand. Ratios are
taken between figures of the same run. Where a result is bad (the wheel
not beating oslo.limit, our strategy oversubscribing), the page says so in
a "Findings" section computed from the same data.

Usage: ``python benches/report.py [--out BENCHMARKS.md]``. Standard library
only, so it runs with any Python 3.9+.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / (os.environ.get("DELIMITER_BENCH_DIR") or "target/bench")

DECISION_IMPLS = [
    "native",
    "rust-host",
    "rust-host-prepared",
    "wheel",
    "wheel-prepared",
    "js-oneshot",
    "js-prepared",
    "wheel-oslo-compat",
    "oslo.limit",
]
SCENARIOS = ["flat", "depth-3", "depth-10"]
STRATEGIES = [
    "generation-cas",
    "generation-cas-4p",
    "generation-cas-lone",
    "for-update",
    "serializable",
    "serializable-20",
]
# The strategy held to the gates below: one process's threads through one
# combiner. generation-cas-4p (processes whose batches contend) is
# reported beside it, and generation-cas-lone (no combining) when run.
GATED = ("generation-cas",)
# generation-cas over for-update, same database and workers, same run.
CONTENTION_GATES = {1: 1.0, 4: 1.2, 16: 1.5, 64: 3.0}


def load_results(results: Path) -> dict[str, list[dict[str, Any]]]:
    """All result files, grouped by table (a table may have several runners)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(results.glob("*.json")):
        if path.name == "scenarios.json":
            continue
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise SystemExit(f"report: cannot read {path}: {e}") from e
        if not isinstance(doc, dict) or "table" not in doc or "rows" not in doc:
            raise SystemExit(f"report: {path} is not a results file (no table/rows)")
        doc["file"] = path.name
        tables.setdefault(doc["table"], []).append(doc)
    return tables


def tiny_split(tables: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """The result files written by a tiny smoke run, and the others."""
    docs = [doc for ds in tables.values() for doc in ds]

    def flag(doc: dict[str, Any]) -> bool:
        # A string is how an older runner wrote it ("False" is not tiny).
        return str(doc.get("meta", {}).get("tiny")).lower() in ("true", "1")

    tiny = sorted(doc["file"] for doc in docs if flag(doc))
    full = sorted(doc["file"] for doc in docs if not flag(doc))
    return tiny, full


def rows_of(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for doc in docs for row in doc["rows"]]


# ---- formatting ---------------------------------------------------------------


def fmt_ns(ns: Optional[float]) -> str:
    """A per-decision time in the unit that keeps three significant digits."""
    if ns is None:
        return "n/a"
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.3g} µs"
    return f"{ns / 1_000_000:.3g} ms"


def fmt_ratio(a: Optional[float], b: Optional[float]) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    r = a / b
    return f"{r:.2f}x" if r < 100 else f"{r:.0f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def meta_lines(docs: list[dict[str, Any]]) -> str:
    """Every runner's own account of its method and versions, verbatim."""
    out = []
    for doc in docs:
        meta = doc.get("meta") or {}
        if not meta:
            continue
        out.append(f"- `{doc['file']}` ({doc.get('runner', '?')}):")
        for key, value in meta.items():
            if isinstance(value, (dict, list)):
                value = json.dumps(value)
            out.append(f"  - {key}: {value}")
    return "\n".join(out)


# ---- the machine ----------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def machine() -> list[str]:
    cpu = cpu_model()
    mem = "unknown"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores; memory {mem}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- rustc: {_first_line(['rustc', '--version'])}",
        f"- Python (report): {platform.python_version()}",
        f"- wasmtime: {locked_version('wasmtime')}; criterion: {locked_version('criterion')}",
    ]


def locked_version(crate: str) -> str:
    """The version Cargo.lock pins (the one every Rust runner was built with)."""
    try:
        text = (ROOT / "Cargo.lock").read_text()
    except OSError:
        return "unknown"
    m = re.search(r'\[\[package\]\]\nname = "' + re.escape(crate) + r'"\nversion = "([^"]+)"', text)
    return m.group(1) if m else "unknown"


# ---- the four tables ------------------------------------------------------------


def decision_section(docs: list[dict[str, Any]], findings: list[str]) -> str:
    rows = rows_of(docs)
    cell: dict[tuple[str, int, str], float] = {
        (r["scenario"], int(r["resources"]), r["impl"]): float(r["median_ns"]) for r in rows
    }
    present = [i for i in DECISION_IMPLS if any(k[2] == i for k in cell)]
    keys = sorted({(k[0], k[1]) for k in cell}, key=lambda k: (_order(SCENARIOS, k[0]), k[1]))
    header = ["scenario", "resources"] + [f"{i} (median)" for i in present]
    header += [f"{i} / native" for i in present if i != "native"]
    header += ["oslo.limit / wheel"]
    # The prepared API's column only when its rows are there.
    prepared = "wheel-prepared" in present
    if prepared:
        header += ["oslo.limit / wheel-prepared"]
    body = []
    for scen, res in keys:
        get = lambda impl: cell.get((scen, res, impl))  # noqa: E731
        line = [scen, str(res)] + [fmt_ns(get(i)) for i in present]
        line += [fmt_ratio(get(i), get("native")) for i in present if i != "native"]
        line.append(fmt_ratio(get("oslo.limit"), get("wheel")))
        if prepared:
            line.append(fmt_ratio(get("oslo.limit"), get("wheel-prepared")))
            fast, oslo_ns = get("wheel-prepared"), get("oslo.limit")
            if fast is not None and oslo_ns is not None and fast >= oslo_ns:
                findings.append(
                    f"BAD: on {scen} with {res} resource(s) wheel-prepared ({fmt_ns(fast)}) is "
                    f"not faster than oslo.limit ({fmt_ns(oslo_ns)})."
                )
        body.append(line)
        wheel, oslo = get("wheel"), get("oslo.limit")
        if wheel is not None and oslo is not None and wheel >= oslo:
            findings.append(
                f"BAD: on {scen} with {res} resource(s) the wheel's one-shot evaluate "
                f"({fmt_ns(wheel)}, a whole snapshot per call) is not faster than oslo.limit "
                f"({fmt_ns(oslo)})."
            )
    for impl, what in (("wheel", "one-shot evaluate"), ("wheel-prepared", "prepared decision")):
        wins = [
            cell[(s, r, "oslo.limit")] / cell[(s, r, impl)]
            for s, r in keys
            if (s, r, impl) in cell and (s, r, "oslo.limit") in cell
        ]
        if wins and min(wins) > 1:
            findings.append(
                f"The wheel's {what} ({impl}) beats oslo.limit on all {len(wins)} scenarios: "
                f"by {min(wins):.2f}x at least, {max(wins):.2f}x at most."
            )
    return (
        "Median time per decision; ratios are taken between figures of this run "
        "(\"oslo.limit / wheel\" above 1 means the wheel is faster).\n\n"
        + table(header, body)
        + "\n\nMethod and versions, as each runner recorded them:\n\n"
        + meta_lines(docs)
    )


def startup_section(docs: list[dict[str, Any]], findings: list[str]) -> str:
    rows = rows_of(docs)
    base = next((r["median_ms"] for r in rows if r["case"].startswith("bare python")), None)
    body = [
        [r["case"], f"{r['median_ms']:.1f} ms", fmt_ratio(r["median_ms"], base), str(r["runs"])]
        for r in rows
    ]
    by_case = {r["case"]: r["median_ms"] for r in rows}
    first = by_case.get("import delimiter + first decision")
    oslo = by_case.get("from oslo_limit import limit (its Enforcer)")
    if first is not None and oslo is not None:
        verdict = "less" if first < oslo else "MORE"
        findings.append(
            f"Start-up: `import delimiter` plus the first decision takes {first:.1f} ms, "
            f"{verdict} than importing oslo.limit's Enforcer alone ({oslo:.1f} ms)."
        )
    return (
        table(["process", "median wall", "vs bare python", "runs"], body)
        + "\n\n"
        + meta_lines(docs)
    )


def scale_section(docs: list[dict[str, Any]], findings: list[str]) -> str:
    all_rows = rows_of(docs)
    rows = [r for r in all_rows if r.get("shape", "bushy") == "bushy"]
    chain = [r for r in all_rows if r.get("shape") == "chain"]
    cell = {(int(r["projects"]), r["usage_form"], r["impl"]): float(r["median_ns"]) for r in rows}
    impls = [i for i in DECISION_IMPLS if any(k[2] == i for k in cell)]
    sizes = sorted({k[0] for k in cell})
    header = ["projects"]
    for impl in impls:
        header += [f"{impl}, local usage", f"{impl}, path usage"]
    body = []
    for n in sizes:
        line = [f"{n:,}"]
        for impl in impls:
            line += [fmt_ns(cell.get((n, "local", impl))), fmt_ns(cell.get((n, "path", impl)))]
        body.append(line)
    if len(sizes) >= 2:
        small, big = sizes[0], sizes[-1]
        for impl in impls:
            for form in ("local", "path"):
                a, b = cell.get((small, form, impl)), cell.get((big, form, impl))
                if a and b:
                    findings.append(
                        f"Scale, {impl}, {form} usage: {big:,} projects cost "
                        f"{fmt_ratio(b, a)} of {small:,} projects "
                        f"({fmt_ns(a)} -> {fmt_ns(b)})."
                    )
    out = table(header, body)
    if chain:
        # The deep-chain usage sum: linear in the tree, whatever its depth.
        chain_body = [
            [f"{int(r['projects']):,}", r["impl"], fmt_ns(float(r["median_ns"]))]
            for r in sorted(chain, key=lambda r: (int(r["projects"]), _order(DECISION_IMPLS, r["impl"])))
        ]
        out += (
            "\n\nDeep chain, local usage on every node, one decision at the root "
            "(the usage sum, linear in the tree):\n\n"
            + table(["chain depth", "implementation", "median"], chain_body)
        )
    return out + "\n\n" + meta_lines(docs)


def contention_section(docs: list[dict[str, Any]], findings: list[str]) -> str:
    rows = rows_of(docs)
    rows.sort(key=lambda r: (r["db"], int(r["workers"]), _order(STRATEGIES, r["strategy"])))
    by_cell = {(r["db"], int(r["workers"]), r["strategy"]): r for r in rows}
    body = []
    for r in rows:
        lock = by_cell.get((r["db"], int(r["workers"]), "for-update"))
        batch = r.get("mean_batch")
        body.append(
            [
                r["db"],
                str(r["workers"]),
                r["strategy"],
                f"{r['consumes_per_s']:.0f}",
                f"{r['p99_ms']:.1f}",
                fmt_ratio(r["consumes_per_s"], lock["consumes_per_s"] if lock else None),
                "" if batch is None else f"{batch:.1f}",
                f"{r.get('conflicts_per_admission', 0):.2f}",
                str(r["oversubscribed"]),
                str(r.get("lost_updates", "n/a")),
                str(r["admitted"]),
                str(r.get("retries_exhausted", "n/a")),
            ]
        )
        if r["oversubscribed"] or r.get("lost_updates"):
            who = "BAD: Delimiter's" if r["strategy"].startswith("generation-cas") else "The"
            findings.append(
                f"{who} {r['strategy']} strategy oversubscribed {r['oversubscribed']} time(s) "
                f"(lost updates {r.get('lost_updates', 0)}) on {r['db']} with {r['workers']} workers."
            )
    ours = [r for r in rows if r["strategy"].startswith("generation-cas")]
    if ours and all(r["oversubscribed"] == 0 and not r.get("lost_updates") for r in ours):
        findings.append(
            f"Generation compare-and-update: oversubscribed=0 and lost_updates=0 in all "
            f"{len(ours)} generation-cas cells."
        )
    for (db, workers, strategy), r in sorted(by_cell.items()):
        if not strategy.startswith("generation-cas"):
            continue
        lock = by_cell.get((db, workers, "for-update"))
        if lock is None:
            continue
        ratio = r["consumes_per_s"] / lock["consumes_per_s"] if lock["consumes_per_s"] else None
        gate = CONTENTION_GATES.get(workers)
        if strategy == "generation-cas-lone":
            findings.append(
                f"{db}, {workers} workers: without combining ({strategy}) Delimiter does "
                f"{r['consumes_per_s']:.0f} consumes/s, for-update {lock['consumes_per_s']:.0f} "
                f"({fmt_ratio(r['consumes_per_s'], lock['consumes_per_s'])}); "
                f"{r.get('retries_exhausted', 0)} retries exhausted."
            )
            continue
        if strategy not in GATED:
            findings.append(
                f"{db}, {workers} workers: {strategy} ({workers // 4} threads in each of 4 "
                f"processes) does {r['consumes_per_s']:.0f} consumes/s, for-update "
                f"{lock['consumes_per_s']:.0f} ({fmt_ratio(r['consumes_per_s'], lock['consumes_per_s'])}), "
                f"p99 {r['p99_ms']:.1f} ms against {lock['p99_ms']:.1f} ms."
            )
            gate = None
        if gate is not None and ratio is not None and ratio < gate:
            findings.append(
                f"BAD: {db}, {workers} workers: {strategy} does {r['consumes_per_s']:.0f} "
                f"consumes/s, {ratio:.2f}x for-update's {lock['consumes_per_s']:.0f} "
                f"(the gate is {gate}x)."
            )
        if r.get("retries_exhausted"):
            findings.append(
                f"BAD: {db}, {workers} workers: {strategy} ran out of retries "
                f"{r['retries_exhausted']} time(s) (the caller gets RetriesExhausted)."
            )
        # The p99 gate is the gated strategy's; a processes cell's p99
        # against for-update's is in its line above.
        if workers == 64 and strategy in GATED and r["p99_ms"] > lock["p99_ms"]:
            findings.append(
                f"BAD: {db}, 64 workers: {strategy} p99 {r['p99_ms']:.1f} ms is above "
                f"for-update's {lock['p99_ms']:.1f} ms."
            )
    header = [
        "db",
        "workers",
        "strategy",
        "consumes/s",
        "p99 (ms)",
        "vs for-update",
        "mean batch",
        "conflicts per admission",
        "oversubscribed",
        "lost updates",
        "admitted",
        "retries exhausted",
    ]
    gates = ", ".join(f"{g}x at {w}" for w, g in CONTENTION_GATES.items())
    return (
        table(header, body)
        + "\n\nGates for generation-cas over for-update in the same run: "
        + gates
        + "; no retries exhausted in any generation-cas cell (4p included); generation-cas's "
        + "p99 at 64 workers no higher than for-update's. generation-cas-4p (4 processes, a "
        + "combiner each) is reported beside it, its ratio and p99 as findings, not gated; "
        + "generation-cas-lone (each consume alone) only when asked for "
        + "(DELIMITER_BENCH_STRATEGIES).\n\n"
        + meta_lines(docs)
    )


KEYSTONE_LIBRARIES = [
    "oslo.limit",
    "drop-in",
    "drop-in, cache_ttl",
    "delimiter.openstack",
    "delimiter.openstack, nested",
]


def keystone_section(docs: list[dict[str, Any]], findings: list[str]) -> str:
    """Keystone requests per construction and per enforce, warm latency, and
    the drop-in against oslo.limit on the nine decision scenarios."""
    rows = rows_of(docs)
    skipped = [doc["meta"]["skipped"] for doc in docs if doc.get("meta", {}).get("skipped")]
    if not rows:
        reason = skipped[0] if skipped else "no rows"
        findings.append(f"Keystone table not run: {reason}.")
        return f"_Not run: {reason}._\n\n" + meta_lines(docs)
    libs = [lib for lib in KEYSTONE_LIBRARIES if any(r.get("library") == lib for r in rows)]
    req = {
        (r["library"], r["case"], r.get("resources"), r.get("project")): r["requests"]
        for r in rows
        if r["kind"] == "requests"
    }
    lat = {(r["library"], r["resources"], r["project"]): r["median_ns"] for r in rows if r["kind"] == "latency"}

    def n(v: Optional[float]) -> str:
        return "n/a" if v is None else (f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}")

    cases = [("construct-first", None, None), ("construct-again", None, None)]
    widths = sorted({r["resources"] for r in rows if r["kind"] == "latency"})
    for case in ("first-enforce", "warm-enforce"):
        for project in ("override", "no-override"):
            cases += [(case, w, project) for w in widths]
    body = []
    for case, width, project in cases:
        label = case if width is None else f"{case}, {width} resource(s), {project}"
        body.append([label] + [n(req.get((lib, case, width, project))) for lib in libs])
    out = "Keystone requests (every HTTP request Keystone served, from its access log):\n\n"
    out += table(["case"] + libs, body)
    body = []
    for project in ("override", "no-override"):
        for w in widths:
            body.append([f"{w} resource(s), {project}"] + [fmt_ns(lat.get((lib, w, project))) for lib in libs])
    out += "\n\nWarm enforce latency (median; requests a library makes on a warm call included):\n\n"
    out += table(["case"] + libs, body)

    for w in widths:
        ours = req.get(("delimiter.openstack", "warm-enforce", w, "no-override"))
        oslo = req.get(("oslo.limit", "warm-enforce", w, "no-override"))
        if ours is not None and oslo is not None:
            verdict = "" if ours == 0 and oslo > 0 else "BAD: "
            findings.append(
                f"{verdict}Keystone requests per warm enforce, {w} resource(s), project without overrides: "
                f"delimiter.openstack {n(ours)}, oslo.limit {n(oslo)}."
            )

    dec = {(r["scenario"], int(r["resources"]), r["impl"]): r for r in rows if r["kind"] == "decision"}
    keys = sorted({(k[0], k[1]) for k in dec}, key=lambda k: (_order(SCENARIOS, k[0]), k[1]))
    if keys:
        body = []
        wins: dict[str, list[float]] = {"median_ns": [], "best_ns": []}
        for scen, res in keys:
            ours, oslo = dec.get((scen, res, "wheel-oslo-compat")), dec.get((scen, res, "oslo.limit"))
            line = [scen, str(res)]
            for stat in ("median_ns", "best_ns"):
                a = None if ours is None or stat not in ours else float(ours[stat])
                b = None if oslo is None or stat not in oslo else float(oslo[stat])
                line += [fmt_ns(a), fmt_ns(b), fmt_ratio(b, a)]
                if a is not None and b is not None:
                    wins[stat].append(b / a)
                    if a > b:
                        findings.append(
                            f"BAD: the drop-in's warm enforce on {scen} with {res} resource(s) is slower than "
                            f"oslo.limit's by the {stat[:-3]} ({fmt_ns(a)} against {fmt_ns(b)})."
                        )
            body.append(line)
        for stat, label in (("median_ns", "median"), ("best_ns", "best batch")):
            w = wins[stat]
            if w and min(w) >= 1:
                findings.append(
                    f"The drop-in's warm enforce is at least as fast as oslo.limit's on all {len(w)} decision "
                    f"scenarios by the {label}: {min(w):.2f}x to {max(w):.2f}x."
                )
        out += (
            "\n\nThe drop-in against oslo.limit on table 1's scenarios (limits in each library's cache, "
            "no Keystone; interleaved in this run):\n\n"
        )
        out += table(
            [
                "scenario",
                "resources",
                "drop-in (median)",
                "oslo.limit (median)",
                "oslo.limit / drop-in (median)",
                "drop-in (best)",
                "oslo.limit (best)",
                "oslo.limit / drop-in (best)",
            ],
            body,
        )
    return out + "\n\n" + meta_lines(docs)


def _order(known: list[str], value: str) -> int:
    return known.index(value) if value in known else len(known)


# ---- the page -------------------------------------------------------------------


SECTIONS = [
    ("decision", "1. Decision cost", decision_section),
    ("startup", "2. Start-up", startup_section),
    ("scale", "3. Scale", scale_section),
    ("contention", "4. Contention", contention_section),
    ("keystone", "5. Keystone", keystone_section),
]


def render(tables: dict[str, list[dict[str, Any]]]) -> str:
    findings: list[str] = []
    parts = []
    for key, title, section in SECTIONS:
        docs = tables.get(key)
        if not docs:
            body = "_Not run: no results for this table in target/bench/._"
            findings.append(f"BAD: table \"{title}\" has no results.")
        else:
            body = section(docs, findings)
        parts.append(f"## {title}\n\n{body}\n")
    findings.sort(key=lambda f: not f.startswith("BAD"))
    tiny_files, full_files = tiny_split(tables)
    tiny = bool(tiny_files)
    if tiny_files and full_files:
        findings.insert(
            0,
            f"BAD: tiny smoke-run results ({', '.join(tiny_files)}) are mixed with full ones; "
            "these tables are not from one run.",
        )
    head = [
        "# Benchmarks",
        "",
        "Written by `just bench` (`benches/report.py`) from the results of one run on one "
        "machine; do not edit by hand. Absolute times on a shared 2-core machine are noise; "
        "read the ratios, which compare figures measured in the same run.",
        "",
    ]
    if tiny:
        head += ["**These are tiny smoke-run figures (DELIMITER_BENCH_TINY=1), not benchmarks.**", ""]
    head += [
        f"Run: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        "## Machine and versions",
        "",
        *machine(),
        "",
        "## Findings",
        "",
        *[f"- {f}" for f in findings],
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(parts)


def replace_section(page: Path, key: str, tables: dict[str, list[dict[str, Any]]]) -> int:
    """Re-renders one section of an existing page from its results (the
    section says it comes from its own run), leaving the rest untouched; the
    section's findings replace the ones it added before."""
    entry = next((s for s in SECTIONS if s[0] == key), None)
    if entry is None:
        raise SystemExit(f"report: no section {key!r}")
    _, title, section = entry
    docs = tables.get(key)
    if not docs:
        raise SystemExit(f"report: no results for {key!r} in {RESULTS}")
    findings: list[str] = []
    run = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = f"_From its own run (`just bench-keystone`, {run}), not the rest of the page's._\n\n" + section(docs, findings)
    text = page.read_text() if page.exists() else ""
    block = f"## {title}\n\n{body}\n"
    start = text.find(f"## {title}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + block + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    marker = f"<!-- {key} -->"
    lines = [line for line in text.split("\n") if not line.endswith(marker)]
    at = next((i for i, line in enumerate(lines) if line == "## Findings"), None)
    if at is not None:
        lines[at + 2 : at + 2] = [f"- {f} {marker}" for f in findings]
    page.write_text("\n".join(lines))
    print(f"wrote section {title!r} of {page}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--results", default=str(RESULTS), help="the runners' JSON files")
    parser.add_argument(
        "--section",
        help="re-render only this table's section (e.g. keystone) inside the existing page, from its "
        "results; the rest of the page is kept as it is",
    )
    parser.add_argument(
        "--require-all",
        action="store_true",
        help="exit 1 if a table has no results (so a runner that silently wrote nothing fails)",
    )
    args = parser.parse_args(argv)
    tables = load_results(Path(args.results))
    if args.section:
        return replace_section(Path(args.out), args.section, tables)
    text = render(tables)
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    missing = [key for key, _, _ in SECTIONS if not tables.get(key)]
    if args.require_all and missing:
        print(f"report: no results for: {', '.join(missing)}", file=sys.stderr)
        return 1
    tiny_files, full_files = tiny_split(tables)
    if args.require_all and tiny_files and full_files:
        print(f"report: tiny results mixed with full ones: {', '.join(tiny_files)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
