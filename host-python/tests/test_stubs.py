"""The .pyi stubs describe the real module: the same public names, the
same members per class, the same parameters per function."""

import ast
import inspect
import pathlib

import delimiter
from delimiter import _delimiter

STUB = pathlib.Path(delimiter.__file__).with_name("_delimiter.pyi")
TREE = ast.parse(STUB.read_text())


def public(names):
    return {n for n in names if not n.startswith("_")}


def stub_top_level():
    names = {}
    for node in TREE.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign):
            names[node.target.id] = node
    return names


def test_py_typed_ships_beside_the_stubs():
    assert STUB.is_file()
    assert STUB.with_name("py.typed").is_file()


def test_stub_names_match_the_module():
    assert public(stub_top_level()) == public(dir(_delimiter))


def test_stub_class_members_match_the_classes():
    for name, node in stub_top_level().items():
        if not isinstance(node, ast.ClassDef) or name.startswith("_"):
            continue
        in_stub = set()
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                in_stub.add(item.name)
            elif isinstance(item, ast.AnnAssign):
                in_stub.add(item.target.id)
        cls = getattr(_delimiter, name)
        assert public(in_stub) == public(vars(cls)), name


def test_stub_function_parameters_match_the_functions():
    for name, node in stub_top_level().items():
        if not isinstance(node, ast.FunctionDef) or name.startswith("_"):
            continue
        args = node.args
        in_stub = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        real = list(inspect.signature(getattr(_delimiter, name)).parameters)
        assert in_stub == real, name


def test_stub_constructor_parameters_match_the_classes():
    for name, node in stub_top_level().items():
        if not isinstance(node, ast.ClassDef) or name.startswith("_"):
            continue
        init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        cls = getattr(_delimiter, name)
        if init is None:
            continue
        in_stub = [a.arg for a in init.args.args[1:] + init.args.kwonlyargs]
        real = list(inspect.signature(cls).parameters)
        assert in_stub == real, name


def test_the_package_exports_everything_public():
    assert public(dir(_delimiter)) <= set(delimiter.__all__)
    for name in delimiter.__all__:
        assert hasattr(delimiter, name), name


# ---- the stubs against the WIT (tools/check_stubs.py) ----------------------------

TOOLS = pathlib.Path(__file__).resolve().parents[1] / "tools"
WIT = pathlib.Path(__file__).resolve().parents[2] / "wit" / "delimiter.wit"


def check_stubs(*args):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, str(TOOLS / "check_stubs.py"), *map(str, args)],
        capture_output=True, text=True,
    )


def test_the_stubs_match_the_wit():
    out = check_stubs()
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_stub_check_catches_a_renamed_field(tmp_path):
    wit = tmp_path / "delimiter.wit"
    text = WIT.read_text()
    assert "        parent-limit: s64," in text
    wit.write_text(text.replace("        parent-limit: s64,", "        parents-limit: s64,"))
    out = check_stubs("--wit", wit)
    assert out.returncode == 1
    assert "ChildLimitExceedsParent" in out.stdout and "parents_limit" in out.stdout


def test_the_stub_check_catches_a_field_missing_from_invalid_input(tmp_path):
    errors = tmp_path / "_errors.py"
    text = STUB.with_name("_errors.py").read_text()
    assert '"expected", "actual",' in text
    errors.write_text(text.replace('"expected", "actual",', '"expected",'))
    out = check_stubs("--errors", errors)
    assert out.returncode == 1 and "actual" in out.stdout
