"""Loading the component: cheap imports, the on-disk cache of the compiled
component, and its fallbacks."""

import json
import os
import pathlib
import stat
import subprocess
import sys

PROBE = (
    "import json, sys, delimiter as d\n"
    "heavy = sorted(m for m in ('openstack', 'oslo_config', 'keystoneauth1') if m in sys.modules)\n"
    "decision = d.evaluate(d.Snapshot(projects=[d.Project('a')],"
    " limits=d.Limits([d.RegisteredLimit('x', 2)]), generations=[d.Generation('a', 1)]),"
    " d.Request('a', {'x': 1}))\n"
    "info = d.load_info()\n"
    "print(json.dumps({'admitted': decision.admitted, 'heavy': heavy, **info}))\n"
)


def probe(cache_dir, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DELIMITER_CACHE")}
    environ["DELIMITER_CACHE_DIR"] = str(cache_dir)
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_import_compiles_nothing_and_pulls_in_nothing_heavy(tmp_path):
    environ = dict(os.environ, DELIMITER_CACHE_DIR=str(tmp_path / "cache"))
    code = "import sys, delimiter; print(sorted(m for m in ('openstack', 'oslo_config') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert not (tmp_path / "cache").exists()


def test_the_compiled_component_is_cached_and_reused(tmp_path):
    cache = tmp_path / "cache"
    first = probe(cache)
    assert first["admitted"] and first["heavy"] == []
    assert first["source"] == "compiled"
    path = pathlib.Path(first["path"])
    assert path.parent == cache and path.suffix == ".cwasm"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    second = probe(cache)
    assert (second["source"], second["path"]) == ("cache", first["path"])
    assert second["admitted"]


def test_a_corrupt_artifact_is_recompiled(tmp_path):
    cache = tmp_path / "cache"
    path = pathlib.Path(probe(cache)["path"])
    path.write_bytes(b"\x7fELF not really" * 100)
    again = probe(cache)
    assert again["source"] == "compiled" and again["admitted"]
    assert "rejected" in again["note"]
    assert probe(cache)["source"] == "cache"


def test_a_directory_others_can_write_to_is_not_trusted(tmp_path):
    cache = tmp_path / "cache"
    probe(cache)
    cache.chmod(0o777)
    again = probe(cache)
    assert again["source"] == "compiled-uncached" and again["admitted"]
    assert "writable by others" in again["note"]


def test_the_cache_can_be_turned_off(tmp_path):
    off = probe(tmp_path / "cache", DELIMITER_CACHE="0")
    assert off["source"] == "compiled-uncached" and off["admitted"]
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_still_works(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    out = probe(not_a_dir / "cache")
    assert out["source"] == "compiled-uncached" and out["admitted"]


WHEELS = pathlib.Path(__file__).resolve().parents[2] / "target" / "wheels"


def test_the_wheel_installs_into_a_fresh_venv(tmp_path):
    import pytest

    wheels = sorted(WHEELS.glob("delimiter-*-abi3-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        pytest.skip("no wheel in target/wheels: run `just wheel`")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--no-deps", str(wheels[-1])],
        check=True,
    )
    code = (
        "import pathlib, delimiter\n"
        "here = pathlib.Path(delimiter.__file__).parent\n"
        "assert (here / 'py.typed').is_file() and (here / '_delimiter.pyi').is_file()\n"
        "import delimiter.compat.oslo_limit\n"
        "print(delimiter.parse_model('strict_two_level').value)\n"
    )
    out = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True,
        env=dict(os.environ, DELIMITER_CACHE_DIR=str(tmp_path / "cache")), cwd=tmp_path,
    )
    assert out.stdout.strip() == "strict-two-level"
