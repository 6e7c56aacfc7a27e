#!/usr/bin/env bash
# Builds every fuzz target in fuzz/ and runs each for a few seconds, so the targets cannot rot
# and a crash any of them finds quickly fails CI. Runs on the stable toolchain: the targets
# are built as cargo-fuzz builds them (libFuzzer from the libfuzzer-sys crate, `--cfg fuzzing`,
# LLVM's SanitizerCoverage instrumentation, debug assertions and overflow checks), but without
# AddressSanitizer, whose `-Zsanitizer` flag needs nightly; for long runs with ASan see
# docs/RELIABILITY.md §"Fuzzing". Needs a C++ compiler (libFuzzer is C++).
# Usage: bash scripts/fuzz-smoke.sh [SECONDS per target, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
host="$(rustc -vV | sed -n 's/^host: //p')"

# The instrumentation cargo-fuzz uses (cargo-fuzz 0.13, src/project.rs), minus -Zsanitizer.
# --target keeps these flags off build scripts and proc-macros, which must not be instrumented.
flags="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
flags="$flags -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
flags="$flags -Cllvm-args=-sanitizer-coverage-pc-table"
flags="$flags -Cllvm-args=-sanitizer-coverage-trace-compares"
flags="$flags -Cdebug-assertions -Coverflow-checks"
RUSTFLAGS="$flags" cargo build --quiet --release --bins --target "$host" \
    --manifest-path fuzz/Cargo.toml
bins="fuzz/target/$host/release"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Seed corpora from the repository's own files (fuzz/seeds/make.py made the committed seeds);
# the corpora grow in $work only.
targets="entry_decode checkpoint_open ingest gate_definition bundle_verify store_open"
for target in $targets; do
    mkdir -p "$work/$target"
    if [ -d "fuzz/seeds/$target" ]; then cp fuzz/seeds/"$target"/* "$work/$target/"; fi
done
# Every importer fixture, subdirectories included, as one flat corpus (a/b.pem → a_b.pem).
find tests/fixtures/ingest -type f | while read -r f; do
    rel="${f#tests/fixtures/ingest/}"
    cp "$f" "$work/ingest/${rel//\//_}"
done
cp examples/launch-gate/gate.toml "$work/gate_definition/"
cp tests/vectors/bundle-v1.evlb "$work/bundle_verify/"
# A real log without its 16-byte magic (the target adds it).
tail -c +17 tests/vectors/store-layout-2/log >"$work/store_open/flagship"

status=0
for target in $targets; do
    mkdir -p "$work/artifacts/$target"
    # -timeout: an input that takes 10 s is unbounded work and fails like a crash. A log
    # needs room to hold more than a few entries.
    max_len=""
    [ "$target" != store_open ] || max_len="-max_len=200000"
    if "$bins/$target" -max_total_time="$seconds" -timeout=10 $max_len \
        -artifact_prefix="$work/artifacts/$target/" -print_final_stats=1 \
        "$work/$target" >"$work/$target.log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")"
        echo "fuzz: $target: ${runs:-?} runs in ${seconds} s, no crash"
    else
        echo "fuzz: $target FAILED; its output and the input that failed:" >&2
        grep -m1 -A2 "panicked at" "$work/$target.log" >&2 || true
        tail -n 30 "$work/$target.log" >&2
        # Keep what failed where a developer reruns it (fuzz/artifacts/ is git-ignored):
        #   fuzz/target/<host>/release/TARGET fuzz/artifacts/TARGET/crash-…
        mkdir -p "fuzz/artifacts/$target"
        for a in "$work/artifacts/$target"/*; do
            [ -f "$a" ] || continue
            cp "$a" "fuzz/artifacts/$target/"
            echo "--- kept as fuzz/artifacts/$target/${a##*/}; first 4 KiB in base64:" >&2
            head -c 4096 "$a" | base64 >&2
        done
        status=1
    fi
done
exit "$status"
