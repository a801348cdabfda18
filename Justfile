# Delimiter's tasks. `just` alone lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python3")
venv := ".venv-delimiter"

# List the recipes.
default:
    @just --list

# Install what a fresh machine lacks (idempotent): wasm target, Python tools.
setup:
    rustup target add wasm32-unknown-unknown >/dev/null
    {{python}} -m pip install --quiet --disable-pip-version-check -r conformance/requirements.txt
    test -x {{venv}}/bin/python || {{python}} -m venv {{venv}} || ({{python}} -m pip install --quiet virtualenv && {{python}} -m virtualenv {{venv}})
    echo '*' > {{venv}}/.gitignore
    {{venv}}/bin/python -m pip install --quiet --disable-pip-version-check -r host-python/requirements-dev.txt

# Everything, all hosts: unit, property and doc tests, vector schema, conformance.
test: setup component
    cargo test --workspace --quiet
    just test-python
    just check-vectors
    just conformance

# Check every vector file against conformance/schema.json.
check-vectors:
    {{python}} conformance/check_vectors.py

# Build target/delimiter.wasm, the component every host embeds (no WASI imports).
component:
    @rustup target add wasm32-unknown-unknown >/dev/null 2>&1
    @cargo build --quiet -p delimiter-component --target wasm32-unknown-unknown --profile component
    @cargo run --quiet -p delimiter-component-encode

# Run the shared vectors on every host: one line per host.
conformance: component
    @cargo test --quiet -p delimiter-core --test conformance 2>/dev/null | grep '^conformance '
    @cargo test --quiet -p delimiter --test conformance 2>/dev/null | grep '^conformance '
    @just wheel >/dev/null 2>&1 || just wheel; {{venv}}/bin/python host-python/tests/conformance_runner.py | grep '^conformance '

# Build the Python wheel (release, abi3) into target/wheels and install it into .venv-delimiter.
wheel: setup component
    {{venv}}/bin/maturin build --release --quiet -m host-python/Cargo.toml --out target/wheels
    {{venv}}/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps --no-index --find-links target/wheels delimiter

# The Python wheel's tests (API, stubs, cache, oslo.limit comparison, SQLAlchemy
# store, every vector), then the Python concurrency harness (16 processes, on
# SQLite and every database set in the environment).
test-python: wheel
    {{venv}}/bin/python -m pytest -q -p no:cacheprovider host-python/tests
    {{venv}}/bin/python host-python/tests/concurrency_harness.py

# The demonstration (README quickstart): concurrent workers consuming through
# the Python API on SQLite, refusals explained, audited.
demo: wheel
    {{venv}}/bin/python host-python/examples/demo.py

# The same demonstration through the Rust host.
demo-rust: setup component
    cargo run --quiet -p delimiter --example demo

# Benchmarks (issue 6): not written yet.
bench:
    @echo "just bench: no benchmarks yet (issue 6)" >&2; exit 1

# Format and lint.
fmt:
    cargo fmt --all

lint: component
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p delimiter-component --target wasm32-unknown-unknown -- -D warnings
