"""Runs every conformance vector through the installed ``delimiter`` wheel.

As a script it prints each failure with its identity, then exactly one line,
``conformance python: N passed, M failed``, and exits non-zero if M > 0 (the
runner contract of conformance/README.md). ``test_conformance.py`` runs the
same cases one pytest test each.

Vectors: ``$DELIMITER_VECTORS`` or ../../conformance/vectors from here.
"""

import json
import os
import pathlib
import sys

import delimiter as d

VECTORS = pathlib.Path(
    os.environ.get(
        "DELIMITER_VECTORS",
        pathlib.Path(__file__).resolve().parents[2] / "conformance" / "vectors",
    )
)


def cases():
    """Every case as ``(identity, case)``, files sorted by name, cases in
    file order."""
    for path in sorted(VECTORS.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            yield f"{path.stem}/{case['description']}", case


# ---- inputs ----------------------------------------------------------------


def config(case):
    c = case.get("config", {})
    return d.Config(
        model=c.get("model", "nested"),
        max_depth=c.get("max_depth", d.DEFAULT_MAX_DEPTH),
        missing_limit=c.get("missing_limit", "zero"),
    )


def usage_entries(rows):
    return [d.UsageEntry(u["project"], u["resource"], u["usage"]) for u in rows]


def snapshot(v):
    usage = v.get("usage", {"local": []})
    if "path" in usage:
        path = usage["path"]
        usage = d.PathUsage(
            local=[d.ResourceUsage(u["resource"], u["usage"]) for u in path.get("local", [])],
            subtree=usage_entries(path.get("subtree", [])),
        )
    else:
        usage = usage_entries(usage.get("local", []))
    return d.Snapshot(
        projects=[d.Project(p["id"], p.get("parent")) for p in v.get("projects", [])],
        limits=d.Limits(
            registered=[
                d.RegisteredLimit(l["resource"], l["limit"])
                for l in v.get("registered_limits", [])
            ],
            project=[
                d.ProjectLimit(l["project"], l["resource"], l["limit"])
                for l in v.get("project_limits", [])
            ],
        ),
        usage=usage,
        generations=[d.Generation(g["project"], g["generation"]) for g in v.get("generations", [])],
    )


def deltas(rows):
    # A list, not a dict: a case may repeat a resource on purpose.
    return [d.Delta(x["resource"], x["delta"]) for x in rows]


def request(case):
    r = case["request"]
    return d.Request(r["project"], deltas(r.get("deltas", [])))


# ---- outputs ---------------------------------------------------------------


def claim_json(claim):
    return [{"project": c.project, "generation": c.generation} for c in claim]


def finding_json(f):
    if isinstance(f, d.ChildLimitExceedsParent):
        return {
            "kind": f.kind,
            "parent": f.parent,
            "child": f.child,
            "resource": f.resource,
            "parent_limit": f.parent_limit,
            "child_limit": f.child_limit,
        }
    out = {"kind": f.kind}
    if f.project is not None:
        out["project"] = f.project
    if f.resource is not None:
        out["resource"] = f.resource
    return out


# ---- operations ------------------------------------------------------------


def decision_json(decision):
    if decision.admitted:
        return {"admitted": True, "claim": claim_json(decision.claim)}
    return {
        "admitted": False,
        "violations": [
            {"project": v.project, "resource": v.resource, "limit": v.limit,
             "usage": v.usage, "delta": v.delta}
            for v in decision.violations
        ],
    }


def run_evaluate(case):
    return decision_json(d.evaluate(snapshot(case["snapshot"]), request(case), config(case)))


def run_prepared(case):
    # Prepared from the config, tree and limits; the request decided from
    # the case's numbers (which also reports a bad request, in evaluate's
    # order), then the path those numbers follow.
    s = snapshot(case["snapshot"])
    prepared = d.Prepared(s.projects, s.limits, config(case))
    r = request(case)
    decision = prepared.evaluate(r.project, r.deltas, case["local"], case["subtree"], case["generations"])
    return {"path": prepared.path(r.project), **decision_json(decision)}


def run_headroom(case):
    rows = d.headroom(
        snapshot(case["snapshot"]), case["project"], case.get("resources", []), config(case)
    )
    return [
        {"resource": h.resource, "headroom": "unlimited" if h.unlimited else h.room}
        for h in rows
    ]


def run_max_count(case):
    count = d.max_count(snapshot(case["snapshot"]), request(case), config(case))
    return {"count": "unlimited" if count.unlimited else count.units}


def run_validate(case):
    s = snapshot(case["snapshot"])
    return [finding_json(f) for f in d.validate(s.projects, s.limits, config(case))]


def run_oslo(case):
    o = case["oslo"]
    check = d.OsloCheck(
        o.get("project_id"),
        deltas(o.get("deltas", [])),
        registered=[d.ResourceLimit(l["resource"], l["limit"]) for l in o.get("registered_limits", [])],
        project=[d.ResourceLimit(l["resource"], l["limit"]) for l in o.get("project_limits", [])],
        usage=[d.ResourceUsage(u["resource"], u["usage"]) for u in o.get("usage", [])],
    )
    return {
        "over_limit": [
            {"resource_name": i.resource_name, "limit": i.limit,
             "current_usage": i.current_usage, "delta": i.delta}
            for i in d.oslo_check(check)
        ]
    }


class ScriptedStore:
    """The vectors' scripted store: the n-th read (or read_batch) and
    commit (or commit_batch) return the n-th step, or the last once the
    list runs out. Its clock is virtual: it starts at 0 and moves only by
    ``read_us`` per read, ``commit_us`` per commit and each backoff's delay
    (a backoff never waits); ``entropy`` is what every entropy call
    returns. Backoffs are counted and their delays summed; each
    commit_batch's claim and members are recorded. With ``locks`` in the
    spec, read_locked answers the next read step (or None when ``locks`` is
    false) and the calls count ``locked_reads`` and ``unlocks``."""

    def __init__(self, spec):
        self.reads = spec.get("reads", [])
        self.commits = spec.get("commits", [])
        self.read_us = spec.get("read_us", 0)
        self.commit_us = spec.get("commit_us", 0)
        self.bits = spec.get("entropy", 0)
        self.clock = 0
        self.calls = {"reads": 0, "commits": 0, "backoffs": 0, "slept_us": 0}
        self.locks = spec.get("locks")
        if self.locks is not None:
            self.calls.update(locked_reads=0, unlocks=0)
        self.read_steps = 0
        self.batch_commits = []

    @staticmethod
    def _step(steps, n):
        return steps[n] if n < len(steps) else (steps[-1] if steps else None)

    def read(self, project, resources):
        self.calls["reads"] += 1
        return self._next_read()

    def _next_read(self):
        step = self._step(self.reads, self.read_steps)
        self.read_steps += 1
        self.clock += self.read_us
        if step == "storage-error" or step is None:
            raise d.StorageError("scripted read failure")
        return snapshot(step)

    def read_locked(self, project, resources):
        self.calls["locked_reads"] = self.calls.get("locked_reads", 0) + 1
        return self._next_read() if self.locks else None

    def unlock(self):
        self.calls["unlocks"] = self.calls.get("unlocks", 0) + 1

    def commit(self, claim, req):
        step = self._step(self.commits, self.calls["commits"])
        self.calls["commits"] += 1
        self.clock += self.commit_us
        if step in ("committed", "conflict", "conflict-after-wait"):
            return step
        raise d.StorageError("scripted commit failure")

    def read_batch(self, projects, resources):
        return self.read(None, resources)

    def commit_batch(self, claim, members):
        self.batch_commits.append(
            {"claim": claim_json(claim), "members": [m.project for m in members]}
        )
        step = self._step(self.commits, self.calls["commits"])
        if isinstance(step, dict) and "member_failed" in step:
            self.calls["commits"] += 1
            self.clock += self.commit_us
            return d.MemberFailure(step["member_failed"], "scripted member failure")
        return self.commit(claim, None)

    def backoff(self, attempt, delay_us):
        self.calls["backoffs"] += 1
        self.calls["slept_us"] += delay_us
        self.clock += delay_us

    def now_us(self):
        return self.clock

    def entropy(self):
        return self.bits


def policy(case):
    # The vectors' names are the Python ones; a missing field is the default.
    return d.RetryPolicy(**case.get("policy", {}))


def consumed_json(done):
    return {"claim": claim_json(done.claim), "attempts": done.attempts}


def run_consume(case, calls):
    store = ScriptedStore(case.get("store", {}))
    try:
        return consumed_json(d.consume(store, request(case), config(case), policy(case)))
    finally:
        calls.update(store.calls)


def requests(case):
    return [d.Request(r["project"], deltas(r.get("deltas", []))) for r in case["requests"]]


def error_kind(e):
    if isinstance(e, d.InvalidInput):
        return e.kind
    if isinstance(e, d.GuestFault):
        return f"guest-fault: {e}"
    return ERROR_KINDS.get(type(e), f"unexpected {type(e).__name__}: {e}")


def run_evaluate_batch(case):
    decided = d.evaluate_batch(snapshot(case["snapshot"]), requests(case), config(case))
    return [
        {"error": error_kind(x)} if isinstance(x, BaseException) else decision_json(x)
        for x in decided
    ]


def run_prepared_batch(case):
    # Prepared from the config, tree and limits (an error there is the
    # case's); then every member as given, by name with its own numbers.
    s = snapshot(case["snapshot"])
    prepared = d.Prepared(s.projects, s.limits, config(case))
    members = [
        d.PreparedMember(
            d.Request(m["request"]["project"], deltas(m["request"].get("deltas", []))),
            m["local"],
            m["subtree"],
            m["generations"],
        )
        for m in case["members"]
    ]
    return [
        {"error": error_kind(x)} if isinstance(x, BaseException) else decision_json(x)
        for x in prepared.evaluate_batch(members)
    ]


def run_consume_batch(case, calls, commits):
    store = ScriptedStore(case.get("store", {}))
    try:
        results = d.consume_batch(store, requests(case), config(case), policy(case))
        return [
            {"error": error_kind(x)} if isinstance(x, BaseException) else consumed_json(x)
            for x in results
        ]
    finally:
        calls.update(store.calls)
        commits.extend(store.batch_commits)


OPERATIONS = {
    "evaluate": run_evaluate,
    "headroom": run_headroom,
    "max-count": run_max_count,
    "validate": run_validate,
    "oslo-check": run_oslo,
    "prepared": run_prepared,
    "evaluate-batch": run_evaluate_batch,
    "prepared-batch": run_prepared_batch,
}

ERROR_KINDS = {
    d.OverLimit: "over-limit",
    d.RetriesExhausted: "retries-exhausted",
    d.StorageError: "storage",
}


def canonical(value):
    """Compared as JSON, so that True is not 1 and key order is ignored."""
    return json.dumps(value, sort_keys=True)


def run_case(case):
    """None when the case passes, else why it failed."""
    op = case.get("operation")
    calls = {}
    commits = []
    try:
        if op == "consume":
            outcome = ("result", run_consume(case, calls))
        elif op == "consume-batch":
            outcome = ("result", run_consume_batch(case, calls, commits))
        elif op in OPERATIONS:
            outcome = ("result", OPERATIONS[op](case))
        else:
            return f"unsupported operation {op!r}"
    except d.InvalidInput as e:
        outcome = ("error", e.kind)
    except d.GuestFault as e:
        outcome = ("error", f"guest-fault: {e}")
    except (d.OverLimit, d.RetriesExhausted, d.StorageError) as e:
        outcome = ("error", ERROR_KINDS[type(e)])
    except Exception as e:  # a crash is a failure, reported as such
        return f"crashed: {type(e).__name__}: {e}"

    if "want_result" in case and "want_error" not in case:
        want = ("result", case["want_result"])
    elif "want_error" in case and "want_result" not in case:
        want = ("error", case["want_error"])
    else:
        return "the case has neither (or both) want_result and want_error"
    if canonical(outcome) != canonical(want):
        return f"want {want[0]} {json.dumps(want[1])} got {outcome[0]} {json.dumps(outcome[1])}"
    if op in ("consume", "consume-batch"):
        want_calls = case.get("want_calls")
        if not isinstance(want_calls, dict) or "slept_us" not in want_calls:
            calls.pop("slept_us", None)
        if calls != want_calls:
            return f"want calls {json.dumps(want_calls)} got {json.dumps(calls)}"
    if op == "consume-batch" and canonical(commits) != canonical(case.get("want_commits")):
        return f"want commits {json.dumps(case.get('want_commits'))} got {json.dumps(commits)}"
    return None


def main():
    passed = failed = 0
    for identity, case in cases():
        why = run_case(case)
        if why is None:
            passed += 1
        else:
            failed += 1
            print(f"FAIL {identity}\n     {why}")
    print(f"conformance python: {passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
