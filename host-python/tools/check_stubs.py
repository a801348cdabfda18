#!/usr/bin/env python3
"""Checks the hand-written Python stubs against the WIT, the one definition
of the data.

- Every class of ``delimiter/_delimiter.pyi`` that stands for a WIT record
  (``RECORDS`` below) declares exactly the record's fields, as properties
  and as its constructor's parameters in the WIT's order (kebab-case to
  snake_case, ``%`` dropped), plus only the extras listed.
- Every class that stands for a WIT enum (``ENUMS``) has one class
  attribute per case (``strict-two-level`` is ``STRICT_TWO_LEVEL``).
- ``delimiter._errors.InvalidInput.FIELDS`` is the union of the fields of
  the ``invalid-input`` payload records.
- Every WIT record is either a class here or listed in ``NOT_CLASSES``.

Standard library only. Prints each mismatch and exits 1, or prints one
line and exits 0. Usage, from anywhere:

    python3 host-python/tools/check_stubs.py [--wit W] [--pyi P] [--errors E]
"""

import argparse
import ast
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PACKAGE = HERE.parent / "python" / "delimiter"

#: Python class -> (WIT record, extra members the class adds).
RECORDS = {
    "Project": ("project", set()),
    "RegisteredLimit": ("registered-limit", set()),
    "ProjectLimit": ("project-limit", set()),
    "Limits": ("limits", set()),
    "UsageEntry": ("usage-entry", set()),
    "ResourceUsage": ("resource-usage", set()),
    "PathUsage": ("path-usage", set()),
    "Generation": ("generation", set()),
    "Snapshot": ("snapshot", set()),
    "Config": ("config", set()),
    "Delta": ("delta", set()),
    "Request": ("request", set()),
    "PreparedMember": ("prepared-member", set()),
    "Violation": ("violation", set()),
    "ClaimEntry": ("claim-entry", set()),
    "ResourceHeadroom": ("resource-headroom", {"unlimited"}),
    "ChildLimitExceedsParent": ("child-limit-excess", {"kind"}),
    "RetryPolicy": ("retry-policy", set()),
    "ResourceLimit": ("resource-limit", set()),
    "OsloCheck": ("oslo-request", set()),
    "OverLimitInfo": ("over-limit-info", set()),
    "Consumed": ("consumed", set()),
    # `message` may also be given as the exception, kept as `original`.
    "MemberFailure": ("member-failure", {"original"}),
}

#: Python class -> WIT enum.
ENUMS = {
    "Model": "model",
    "MissingLimit": "missing-limit",
    "CommitOutcome": "commit-outcome",
}

#: WIT records that are not a class of their own, and why.
NOT_CLASSES = {
    # What Prepared keeps inside (Prepared.path gives the path).
    "numbered-request",
    # Payloads of invalid-input: InvalidInput's fields (checked below).
    "project-ref", "resource-ref", "usage-ref", "unknown-parent-info", "too-deep-info",
    "invalid-limit-info", "limit-ref", "negative-usage-info", "release-info",
    "shape-mismatch-info", "model-name", "config-field", "empty-id-info",
    # The exceptions of delimiter._errors: InvalidInput (kind, message,
    # fields), OverLimit (violations, attempts), StorageError (message,
    # attempts).
    "invalid", "over-limit", "storage-failure",
}

def snake(name):
    return name.lstrip("%").replace("-", "_")


def parse_wit(text):
    """``{kind: {name: body}}`` for the records, enums and variants of the
    file: a record's body is its field names in order, an enum's its cases,
    a variant's a list of (case, payload type or None)."""
    text = re.sub(r"//[^\n]*", "", text)
    found = {"record": {}, "enum": {}, "variant": {}}
    for kind, name, body in re.findall(r"\b(record|enum|variant)\s+(%?[\w-]+)\s*\{([^{}]*)\}", text):
        items = [item.strip() for item in body.split(",") if item.strip()]
        name = name.lstrip("%")
        if kind == "record":
            found[kind][name] = [item.split(":", 1)[0].strip().lstrip("%") for item in items]
        elif kind == "enum":
            found[kind][name] = [item.lstrip("%") for item in items]
        else:
            cases = []
            for item in items:
                m = re.fullmatch(r"(%?[\w-]+)\s*(?:\((.*)\))?", item, re.S)
                if m is None:
                    raise SystemExit(f"check_stubs: cannot read variant case {item!r} of {name}")
                cases.append((m.group(1).lstrip("%"), m.group(2) and m.group(2).strip()))
            found[kind][name] = cases
    return found


def stub_classes(text):
    """``{class: (properties, class attributes, constructor parameters)}``."""
    classes = {}
    for node in ast.parse(text).body:
        if not isinstance(node, ast.ClassDef):
            continue
        props, attrs, params = [], [], None
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                if item.name == "__init__":
                    a = item.args
                    params = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs][1:]
                elif any(isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list):
                    props.append(item.name)
            elif isinstance(item, ast.AnnAssign):
                attrs.append(item.target.id)
        classes[node.name] = (props, attrs, params)
    return classes


def invalid_input_fields(text):
    for node in ast.parse(text).body:
        if isinstance(node, ast.ClassDef) and node.name == "InvalidInput":
            for item in node.body:
                if isinstance(item, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "FIELDS" for t in item.targets
                ):
                    return list(ast.literal_eval(item.value))
    return None


def check(wit_text, pyi_text, errors_text):
    wit = parse_wit(wit_text)
    records, enums, variants = wit["record"], wit["enum"], wit["variant"]
    classes = stub_classes(pyi_text)
    problems = []

    for cls, (record, extras) in RECORDS.items():
        if record not in records:
            problems.append(f"{cls}: the WIT has no record {record!r}")
            continue
        if cls not in classes:
            problems.append(f"{cls}: not in the stubs (WIT record {record!r})")
            continue
        want = [snake(f) for f in records[record]]
        props, _, params = classes[cls]
        if sorted(props) != sorted(want + list(extras)):
            missing = sorted(set(want) - set(props))
            extra = sorted(set(props) - set(want) - extras)
            problems.append(
                f"{cls}: properties differ from WIT record {record!r} "
                f"(missing {missing}, not in the WIT {extra})"
            )
        if params != want:
            problems.append(f"{cls}: constructor takes {params}, WIT record {record!r} has {want}")

    for cls, enum in ENUMS.items():
        if enum not in enums:
            problems.append(f"{cls}: the WIT has no enum {enum!r}")
            continue
        want = sorted(snake(c).upper() for c in enums[enum])
        got = sorted(classes.get(cls, ([], [], None))[1])
        if got != want:
            problems.append(f"{cls}: cases {got}, WIT enum {enum!r} has {want}")

    for record in sorted(set(records) - {r for r, _ in RECORDS.values()} - NOT_CLASSES):
        problems.append(f"WIT record {record!r} is neither a class in the stubs nor in NOT_CLASSES")
    for record in sorted(NOT_CLASSES - set(records)):
        problems.append(f"NOT_CLASSES names {record!r}, which the WIT does not have")

    if "invalid-input" not in variants:
        problems.append("the WIT has no variant 'invalid-input'")
    else:
        want = set()
        for case, payload in variants["invalid-input"]:
            if payload in records:
                want |= {snake(f) for f in records[payload]}
            else:
                problems.append(f"invalid-input case {case!r}: payload {payload!r} is no record")
        fields = invalid_input_fields(errors_text)
        if fields is None:
            problems.append("_errors.py: no InvalidInput.FIELDS")
        elif sorted(fields) != sorted(want):
            problems.append(
                f"InvalidInput.FIELDS differs from the invalid-input payload fields "
                f"(missing {sorted(want - set(fields))}, not in the WIT {sorted(set(fields) - want)})"
            )
        elif len(fields) != len(set(fields)):
            problems.append("InvalidInput.FIELDS names a field twice")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wit", type=pathlib.Path, default=ROOT / "wit" / "delimiter.wit")
    parser.add_argument("--pyi", type=pathlib.Path, default=PACKAGE / "_delimiter.pyi")
    parser.add_argument("--errors", type=pathlib.Path, default=PACKAGE / "_errors.py")
    args = parser.parse_args(argv)
    problems = check(args.wit.read_text(), args.pyi.read_text(), args.errors.read_text())
    for problem in problems:
        print(f"MISMATCH {problem}")
    if problems:
        print(f"check_stubs: {len(problems)} mismatch(es) between the stubs and {args.wit}")
        return 1
    print(f"check_stubs: {len(RECORDS)} record classes, {len(ENUMS)} enums and InvalidInput.FIELDS match the WIT")
    return 0


if __name__ == "__main__":
    sys.exit(main())
