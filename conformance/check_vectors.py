#!/usr/bin/env python3
"""Check the conformance vectors against conformance/schema.json.

Validates every conformance/vectors/*.json file against the schema
(JSON Schema draft 2020-12), checks that case descriptions are non-empty and
unique within their file, and that every known-failures/<host>.json file is
well-formed and names only cases that exist. Prints

    vectors: N cases in F files OK

or every problem found, and exits non-zero on any problem.
Needs Python 3.11+ and the `jsonschema` package (see requirements.txt).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("check_vectors: the jsonschema package is missing (pip install -r conformance/requirements.txt)")

HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema.json"
VECTORS = HERE / "vectors"
KNOWN_FAILURES = HERE / "known-failures"


class DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def load(path: Path, errors: list[str]) -> object | None:
    """Parses a JSON file, rejecting repeated keys (a silent typo otherwise)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, DuplicateKey) as e:
        errors.append(f"{rel(path)}: not valid JSON: {e}")
        return None


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(HERE.parent))
    except ValueError:
        return str(path)


def where(doc: object, error_path: list[object]) -> str:
    """A readable location: the case index and description, then the JSON path."""
    parts = [str(p) for p in error_path]
    label = "/" + "/".join(parts) if parts else "(top level)"
    if len(error_path) >= 2 and error_path[0] == "cases" and isinstance(error_path[1], int):
        try:
            description = doc["cases"][error_path[1]].get("description")  # type: ignore[index]
        except (AttributeError, IndexError, KeyError, TypeError):
            description = None
        if isinstance(description, str):
            label += f" [{description!r}]"
    return label


def schema_errors(validator: Draft202012Validator, doc: object, path: Path, errors: list[str]) -> None:
    found = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    for e in found:
        if e.validator == "oneOf" and "is valid under each of" in e.message and isinstance(e.instance, dict) \
                and {"want_result", "want_error"} <= e.instance.keys():
            best, message = e, "has both want_result and want_error (exactly one is allowed)"
        elif e.validator == "oneOf" and isinstance(e.instance, dict) and "operation" in e.instance \
                and not {"want_result", "want_error"} & e.instance.keys():
            best, message = e, "has neither want_result nor want_error (exactly one is required)"
        else:
            # For a oneOf/anyOf failure, the most relevant sub-error is the useful one.
            best = best_match([e]) or e
            message = best.message
        if len(message) > 300:
            message = message[:300] + " ..."
        errors.append(f"{rel(path)}: {where(doc, list(best.absolute_path))}: {message}")


def main() -> int:
    errors: list[str] = []
    schema = load(SCHEMA, errors)
    if schema is None:
        print("\n".join(errors), file=sys.stderr)
        return 1
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as e:  # jsonschema.SchemaError
        print(f"{rel(SCHEMA)}: not a valid draft 2020-12 schema: {e}", file=sys.stderr)
        return 1
    validator = Draft202012Validator(schema)
    known_validator = Draft202012Validator(
        {"$schema": schema.get("$schema"), "$defs": schema.get("$defs", {}), "$ref": "#/$defs/known_failures"}
    )

    files = sorted(VECTORS.glob("*.json"))
    if not files:
        errors.append(f"{rel(VECTORS)}: no vector files")
    identities: set[str] = set()
    cases = 0
    for path in files:
        doc = load(path, errors)
        if doc is None:
            continue
        schema_errors(validator, doc, path, errors)
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            continue
        seen: dict[str, int] = {}
        for index, case in enumerate(doc["cases"]):
            cases += 1
            description = case.get("description") if isinstance(case, dict) else None
            if not isinstance(description, str) or not description.strip():
                errors.append(f"{rel(path)}: /cases/{index}: description is missing or empty")
                continue
            if description != description.strip():
                errors.append(f"{rel(path)}: /cases/{index}: description has leading or trailing whitespace")
            if description in seen:
                errors.append(
                    f"{rel(path)}: /cases/{index}: description {description!r} repeats /cases/{seen[description]}"
                )
            else:
                seen[description] = index
                identities.add(f"{path.stem}/{description}")

    for path in sorted(KNOWN_FAILURES.glob("*.json")):
        doc = load(path, errors)
        if doc is None:
            continue
        schema_errors(known_validator, doc, path, errors)
        for index, entry in enumerate(doc.get("cases", []) if isinstance(doc, dict) else []):
            case = entry.get("case") if isinstance(entry, dict) else None
            if isinstance(case, str) and case not in identities:
                errors.append(f"{rel(path)}: /cases/{index}: no such case {case!r}")

    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        print(f"vectors: {len(errors)} error(s) in {len(files)} files ({cases} cases)", file=sys.stderr)
        return 1
    print(f"vectors: {cases} cases in {len(files)} files OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
