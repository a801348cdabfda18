#!/usr/bin/env python3
"""Writes target/bench/scenarios.json: the benchmark scenarios as data.

Every runner (the Rust criterion benches, benches/decision.py,
benches/decision.mjs) reads this one file, so every implementation decides
exactly the same inputs. Each scenario is a conformance-vector-shaped case
(`config`, `snapshot`, `request`; see conformance/README.md), plus the
fields a runner needs to label its results.

- ``decision``: the same question at three tree shapes and three request
  widths. ``flat``: the flat model, several independent projects.
  ``depth-3`` / ``depth-10``: the nested model, a spine of that depth with
  a few sibling projects at every level, a finite limit on every level of
  the spine, usage on every project; the request comes from the deepest
  project and is admitted (the common case, and the one that produces the
  longest claim). Usage is local (the core sums subtrees). ``oslo`` holds
  the same decision as oslo.limit sees it: it has no nested model, so it
  checks only the requesting project's own limits against its own usage.
- ``scale``: one decision on a bushy tree of 100 to 100,000 projects, in
  both usage forms. ``local``: every project's usage (the core sums the
  subtrees). ``path``: what the SQL stores of the Rust host read for one
  decision (host-rust/src/stores/sqlite.rs): the path's projects, the
  path's limits, the requester's own usage and the subtree usage of every
  node of the path, pre-summed, and the path's generations.

Deterministic: a fixed seed, no clock. ``DELIMITER_BENCH_TINY=1`` writes
small sizes only (for ``just test``, which runs every benchmark once).

Usage: python3 benches/scenarios.py [output.json]
(default: $DELIMITER_BENCH_DIR/scenarios.json, else target/bench/scenarios.json)
"""

import json
import os
import random
import sys
from pathlib import Path

SEED = 20261125

# Nova's and Cinder's unified-limit resource names: realistic name lengths
# matter, because names are copied across the component boundary.
RESOURCES = [
    "servers",
    "class:VCPU",
    "class:MEMORY_MB",
    "class:DISK_GB",
    "server_groups",
    "server_group_members",
    "volumes",
    "gigabytes",
    "snapshots",
    "backups",
]

WIDTHS = [1, 3, 10]
# Levels of the scale trees: a root, then domains, projects, subprojects...
SCALE_LEVELS = 5


def tiny():
    return os.environ.get("DELIMITER_BENCH_TINY", "") not in ("", "0")


def project_id(rng):
    """A Keystone-style project id (32 hex digits), so string sizes are real."""
    return "%032x" % rng.getrandbits(128)


def oslo_view(snapshot, request, registered):
    """The decision as oslo.limit's flat Enforcer sees it: the requester's
    own limits (project overrides over registered defaults) and usage."""
    project = request["project"]
    resources = [d["resource"] for d in request["deltas"]]
    own_limits = {
        l["resource"]: l["limit"]
        for l in snapshot["project_limits"]
        if l["project"] == project and l["resource"] in resources
    }
    usage = snapshot["usage"]["local"]
    own_usage = {r: 0 for r in resources}
    for u in usage:
        if u["project"] == project and u["resource"] in own_usage:
            own_usage[u["resource"]] = u["usage"]
    return {
        "project_id": project,
        "deltas": {d["resource"]: d["delta"] for d in request["deltas"]},
        "registered_limits": {r: registered[r] for r in resources},
        "project_limits": {project: own_limits},
        "usage": own_usage,
    }


def decision_flat(rng, width, projects=8):
    resources = RESOURCES[:width]
    ids = [project_id(rng) for _ in range(projects)]
    registered = {r: rng.randrange(50, 100) for r in resources}
    usage, limits, generations = [], [], []
    for p in ids:
        generations.append({"project": p, "generation": rng.randrange(1, 10**6)})
        for r in resources:
            limit = rng.randrange(100, 200)
            limits.append({"project": p, "resource": r, "limit": limit})
            usage.append({"project": p, "resource": r, "usage": rng.randrange(0, limit // 2)})
    snapshot = {
        "projects": [{"id": p} for p in ids],
        "registered_limits": [{"resource": r, "limit": registered[r]} for r in resources],
        "project_limits": limits,
        "usage": {"local": usage},
        "generations": generations,
    }
    request = {"project": ids[-1], "deltas": [{"resource": r, "delta": 1} for r in resources]}
    return snapshot, request, registered


def decision_nested(rng, width, depth, siblings=2):
    """A spine of `depth` projects, `siblings` more projects at every level
    (beside each spine node), finite limits on the whole spine, usage on
    every project. Limits leave room for the request at every level."""
    resources = RESOURCES[:width]
    spine = [project_id(rng) for _ in range(depth)]
    projects = []
    usage = {}
    for level, p in enumerate(spine):
        parent = spine[level - 1] if level else None
        for q in [p] + [project_id(rng) for _ in range(siblings)]:
            projects.append({"id": q, "parent": parent} if parent else {"id": q})
            for r in resources:
                usage[(q, r)] = rng.randrange(0, 20)
    rng.shuffle(projects)  # storage order is not tree order
    parent_of = {p["id"]: p.get("parent") for p in projects}
    # Subtree usage of every spine node, so every limit leaves some room.
    subtree = {(p, r): 0 for p in spine for r in resources}
    for (q, r), u in usage.items():
        a = q
        while a is not None:
            if (a, r) in subtree:
                subtree[(a, r)] += u
            a = parent_of[a]
    limits = [
        {"project": p, "resource": r, "limit": subtree[(p, r)] + rng.randrange(10, 50)}
        for p in spine
        for r in resources
    ]
    registered = {r: rng.randrange(50, 100) for r in resources}
    snapshot = {
        "projects": projects,
        "registered_limits": [{"resource": r, "limit": registered[r]} for r in resources],
        "project_limits": limits,
        "usage": {
            "local": [
                {"project": q, "resource": r, "usage": u} for (q, r), u in sorted(usage.items())
            ]
        },
        "generations": [
            {"project": p["id"], "generation": rng.randrange(1, 10**6)} for p in projects
        ],
    }
    request = {"project": spine[-1], "deltas": [{"resource": r, "delta": 1} for r in resources]}
    return snapshot, request, registered


def decision_scenarios(rng):
    out = []
    shapes = [("flat", None)] + ([("depth-3", 3)] if tiny() else [("depth-3", 3), ("depth-10", 10)])
    widths = [1, 3] if tiny() else WIDTHS
    for name, depth in shapes:
        for width in widths:
            if depth is None:
                snapshot, request, registered = decision_flat(rng, width)
                config = {"model": "flat"}
            else:
                snapshot, request, registered = decision_nested(rng, width, depth)
                config = {"model": "nested"}
            out.append(
                {
                    "scenario": name,
                    "resources": width,
                    "description": f"{name}, {width} resource(s): request by the deepest project, admitted",
                    "config": config,
                    "snapshot": snapshot,
                    "request": request,
                    "oslo": oslo_view(snapshot, request, registered),
                }
            )
    return out


def bushy_tree(rng, n):
    """`n` projects on SCALE_LEVELS levels, each level about b times the one
    above (b = n ** (1 / (levels - 1))), every project's parent drawn at
    random from the level above: uneven fan-out, like real clouds."""
    levels = SCALE_LEVELS
    b = n ** (1.0 / (levels - 1))
    sizes = [1]
    for k in range(1, levels):
        sizes.append(max(1, round(b**k)))
    # Put the rounding error on the widest level.
    sizes[-1] += n - sum(sizes)
    ids_by_level, parent = [], {}
    for k, size in enumerate(sizes):
        level = [project_id(rng) for _ in range(size)]
        for p in level:
            parent[p] = rng.choice(ids_by_level[k - 1]) if k else None
        ids_by_level.append(level)
    return ids_by_level, parent


def scale_scenarios(rng):
    sizes = [100, 1000] if tiny() else [100, 1_000, 10_000, 100_000]
    resources = RESOURCES[:3]
    out = []
    for n in sizes:
        levels, parent = bushy_tree(rng, n)
        order = [p for level in levels for p in level]
        usage = {(p, r): rng.randrange(0, 20) for p in order for r in resources}
        # Subtree sums, deepest level first.
        subtree = dict(usage)
        for p in reversed(order):
            if parent[p] is not None:
                for r in resources:
                    subtree[(parent[p], r)] += subtree[(p, r)]
        # Limits: every project of the top three levels has its own, and
        # one in ten of the others; all leave room for the request.
        limited = [p for level in levels[:3] for p in level]
        limited += [p for level in levels[3:] for p in level if rng.random() < 0.1]
        requester = rng.choice(levels[-1])
        path = []
        a = requester
        while a is not None:
            path.append(a)
            a = parent[a]
        limited_set = set(limited) | set(path)
        project_limits = [
            {"project": p, "resource": r, "limit": subtree[(p, r)] + rng.randrange(10, 1000)}
            for p in order
            if p in limited_set
            for r in resources
        ]
        registered = [{"resource": r, "limit": 10_000} for r in resources]
        generations = {p: rng.randrange(1, 10**6) for p in order}
        request = {"project": requester, "deltas": [{"resource": r, "delta": 1} for r in resources]}
        projects = [
            {"id": p, "parent": parent[p]} if parent[p] else {"id": p} for p in order
        ]
        local = {
            "projects": projects,
            "registered_limits": registered,
            "project_limits": project_limits,
            "usage": {
                "local": [
                    {"project": p, "resource": r, "usage": usage[(p, r)]}
                    for p in order
                    for r in resources
                ]
            },
            "generations": [{"project": p, "generation": generations[p]} for p in order],
        }
        on_path = set(path)
        path_form = {
            # Root first, as the stores' path query orders them.
            "projects": [
                {"id": p, "parent": parent[p]} if parent[p] else {"id": p} for p in reversed(path)
            ],
            "registered_limits": registered,
            "project_limits": [l for l in project_limits if l["project"] in on_path],
            "usage": {
                "path": {
                    "local": [{"resource": r, "usage": usage[(requester, r)]} for r in resources],
                    "subtree": [
                        {"project": p, "resource": r, "usage": subtree[(p, r)]}
                        for p in reversed(path)
                        for r in resources
                    ],
                }
            },
            "generations": [{"project": p, "generation": generations[p]} for p in reversed(path)],
        }
        for form, snapshot in (("local", local), ("path", path_form)):
            out.append(
                {
                    "shape": "bushy",
                    "projects": n,
                    "usage_form": form,
                    "depth": len(path),
                    "description": f"{n} projects, {form} usage, {len(resources)} resources, request by a leaf at depth {len(path)}",
                    "config": {"model": "nested"},
                    "snapshot": snapshot,
                    "request": request,
                }
            )
    out.append(deep_chain_scenario())
    return out


def deep_chain_scenario():
    """A chain with usage on every node, asked at the root: the sum of
    local usage must be linear in the tree (it was entries x depth: about
    2 s natively at 30,000 deep, out of fuel in the component)."""
    n = 1_000 if tiny() else 30_000
    ids = [f"n{i}" for i in range(n)]
    return {
        "shape": "chain",
        "projects": n,
        "usage_form": "local",
        "depth": 1,
        "description": f"a chain {n:,} deep, local usage of 1 resource on every node, request at the root",
        "config": {"model": "nested", "max_depth": n},
        "snapshot": {
            "projects": [{"id": ids[0]}] + [{"id": ids[i], "parent": ids[i - 1]} for i in range(1, n)],
            "registered_limits": [{"resource": "servers", "limit": 2 * n}],
            "usage": {"local": [{"project": p, "resource": "servers", "usage": 1} for p in ids]},
            "generations": [{"project": ids[0], "generation": 1}],
        },
        "request": {"project": ids[0], "deltas": [{"resource": "servers", "delta": 1}]},
    }


def main():
    root = Path(__file__).resolve().parent.parent
    # Relative to the repository root, as every runner reads it.
    bench_dir = root / (os.environ.get("DELIMITER_BENCH_DIR") or "target/bench")
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else bench_dir / "scenarios.json"
    rng = random.Random(SEED)
    data = {
        "description": "Delimiter benchmark scenarios (benches/scenarios.py); conformance-vector shapes.",
        "seed": SEED,
        "tiny": tiny(),
        "decision": decision_scenarios(rng),
        "scale": scale_scenarios(rng),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    # Compact: the 100,000-project scenario is tens of megabytes.
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    tmp.replace(out)
    print(
        f"{out}: {len(data['decision'])} decision and {len(data['scale'])} scale scenarios"
        + (" (tiny)" if data["tiny"] else "")
    )


if __name__ == "__main__":
    main()
