"""The Python examples in the top-level README.md and host-python/README.md
run as written, so the docs cannot drift from the API."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "host-python" / "README.md"]
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks():
    for doc in DOCS:
        for i, match in enumerate(FENCE.finditer(doc.read_text())):
            yield pytest.param(match.group(1), id=f"{doc.relative_to(ROOT)}#{i + 1}")


BLOCKS = list(_blocks())


def test_the_readmes_have_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS)
def test_readme_example_runs(code, tmp_path, monkeypatch):
    # Blocks that write files do it in a scratch directory.
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<README>", "exec"), {"__name__": "readme_example"})
