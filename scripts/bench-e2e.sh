#!/usr/bin/env bash
# Prints every figure of docs/PERFORMANCE.md in one run: the Ed25519 limits, bulk append to
# 10^6 entries, proofs, verify, CLI single append, the SSH-signed git peer, and `evl replay` of
# a disposition whose basis has 1,000 artifacts (with its split). Prints the load average too.
# The CLI figures are of the release binary as scripts/build-release.sh builds it.
# Usage: bash scripts/bench-e2e.sh [--max N] [--batch N] [--peer N] [--dir DIR] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
EVL_BIN="$PWD/$(bash scripts/build-release.sh)"
export EVL_BIN
cargo build --release --quiet --example bench-e2e
exec target/release/examples/bench-e2e "$@"
