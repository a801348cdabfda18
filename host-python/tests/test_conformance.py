"""Every conformance vector, one test each, through the installed wheel."""

import copy
import json

import pytest

import conformance_runner as runner

CASES = list(runner.cases())


def test_every_vector_file_is_read():
    files = sorted(runner.VECTORS.glob("*.json"))
    assert files, f"no vectors in {runner.VECTORS}"
    total = sum(len(json.loads(f.read_text())["cases"]) for f in files)
    assert len(CASES) == total


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_vector(case):
    why = runner.run_case(case)
    assert why is None, why


def test_a_wrong_expectation_fails():
    """The runner is not vacuous: a changed expectation is caught."""
    identity, case = next((i, c) for i, c in CASES if "want_result" in c)
    case = copy.deepcopy(case)
    case["want_result"] = {"something": "else"}
    assert runner.run_case(case) is not None


def test_a_wrong_call_count_fails():
    identity, case = next((i, c) for i, c in CASES if c["operation"] == "consume")
    case = copy.deepcopy(case)
    case["want_calls"] = {"reads": 99, "commits": 0, "backoffs": 0}
    assert "want calls" in runner.run_case(case)


def test_summary_line(capsys):
    assert runner.main() == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"conformance python: {len(CASES)} passed, 0 failed"
