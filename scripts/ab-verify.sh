#!/usr/bin/env bash
# `evl verify` A/B of this checkout against another commit's worktree, on one host: each side
# builds its own ledger of BATCHES×10,000 artifact entries with examples/bench-bulk-ab.rs (as
# scripts/ab-bulk.sh), then the two release binaries verify their own ledger in interleaved
# pairs (old, new, new, old, …). Prints each run's wall time, entries/s and max RSS, and the
# medians.
# Usage: bash scripts/ab-verify.sh OLD_WORKTREE [PAIRS=5] [BATCHES=50]
#   (the old worktree's release evl as scripts/build-release.sh builds it, e.g. 9df6d89)
set -euo pipefail
cd "$(dirname "$0")/.."
old="${1:?usage: ab-verify.sh OLD_WORKTREE [PAIRS] [BATCHES]}"
pairs="${2:-5}"
batches="${3:-50}"
cp examples/bench-bulk-ab.rs "$old/examples/bench-bulk-ab.rs"
(cd "$old" && cargo build --release --quiet --example bench-bulk-ab)
old_evl="$old/$(cd "$old" && bash scripts/build-release.sh)"
cargo build --release --quiet --example bench-bulk-ab
new_evl="$PWD/$(bash scripts/build-release.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$old/target/release/examples/bench-bulk-ab" "$work/old" "$batches" >/dev/null
target/release/examples/bench-bulk-ab "$work/new" "$batches" >/dev/null
n=$((batches * 10000 + 1))
one() { # TAG BINARY
    local s="$work/state-$1"
    rm -rf "$s"
    /usr/bin/time -f "%e %M" -o "$work/t" env XDG_STATE_HOME="$s" EVL_STATE_DIR="$s" \
        "$2" verify --ledger "$work/$1" >/dev/null 2>"$work/err" ||
        { cat "$work/err" >&2; exit 1; }
    read -r secs kb <"$work/t"
    echo "$1 $secs s $(awk -v n=$n -v s="$secs" 'BEGIN{printf "%.0f", n/s}') entries/s ${kb} kB"
}
for i in $(seq "$pairs"); do
    if [ $((i % 2)) = 1 ]; then one old "$old_evl"; one new "$new_evl"
    else one new "$new_evl"; one old "$old_evl"; fi
done | tee "$work/runs"
python3 - "$work/runs" <<'PY'
import sys, statistics as st
r = {}
for l in open(sys.argv[1]):
    t = l.split(); r.setdefault(t[0], []).append((float(t[1]), int(t[5])))
m = {k: (st.median(x for x, _ in v), st.median(y for _, y in v)) for k, v in r.items()}
print(f"median: old {m['old'][0]:.2f} s {m['old'][1]} kB, new {m['new'][0]:.2f} s {m['new'][1]} kB, "
      f"time new/old {m['new'][0]/m['old'][0]:.3f}")
PY
