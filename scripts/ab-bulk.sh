#!/usr/bin/env bash
# Bulk append A/B of this checkout against another commit's worktree, on one host, pairs
# interleaved (old, new, old, new, …): examples/bench-bulk-ab.rs is copied into the other
# worktree (its API is the 2026-12-01 one), both are built in release, and each pair runs
# BATCHES batches of 10,000 durable appends. Prints each run and the mean of the means.
# Usage: bash scripts/ab-bulk.sh OLD_WORKTREE [PAIRS=5] [BATCHES=20]
#   e.g. git worktree add /tmp/evl-old 9df6d89 && bash scripts/ab-bulk.sh /tmp/evl-old
set -euo pipefail
cd "$(dirname "$0")/.."
old="${1:?usage: ab-bulk.sh OLD_WORKTREE [PAIRS] [BATCHES]}"
pairs="${2:-5}"
batches="${3:-20}"
cp examples/bench-bulk-ab.rs "$old/examples/bench-bulk-ab.rs"
(cd "$old" && cargo build --release --quiet --example bench-bulk-ab)
cargo build --release --quiet --example bench-bulk-ab
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for _ in $(seq "$pairs"); do
    echo "old $("$old/target/release/examples/bench-bulk-ab" "$work/old" "$batches")"
    echo "new $(target/release/examples/bench-bulk-ab "$work/new" "$batches")"
done | tee "$work/runs"
awk '{s[$1] += $3; n[$1]++} END {printf "mean of means: old %.2f us/entry, new %.2f us/entry, new/old %.3f\n", s["old"]/n["old"], s["new"]/n["new"], (s["new"]/n["new"])/(s["old"]/n["old"])}' "$work/runs"
