# Delimiter's tasks. `just` alone lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python3")

# List the recipes.
default:
    @just --list

# Install what a fresh machine lacks (idempotent): wasm target, Python tools.
setup:
    rustup target add wasm32-unknown-unknown >/dev/null
    {{python}} -m pip install --quiet --disable-pip-version-check -r conformance/requirements.txt

# Everything, all hosts: unit, property and doc tests, vector schema, conformance.
test: setup component
    cargo test --workspace --quiet
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

# The demonstration (README quickstart): concurrent workers on SQLite, audited.
demo: setup component
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
