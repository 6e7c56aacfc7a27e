#!/usr/bin/env bash
# Runs the README's shell blocks exactly as written, so they stay true (issue 13 item 11).
#
#   bash scripts/readme-blocks.sh PATH/TO/evl
#
# Every ```sh block of README.md after the first (the first is `cargo run --example` and
# `cargo test`, which CI runs itself) is run, in order, in one `bash -euo pipefail` session,
# in a fresh temporary directory holding only a copy of examples/ (the README's blocks start
# "from the root of this checkout") with the given binary first on PATH as `evl`, and no
# EVL_LEDGER, EVL_KEY or auditor state from the caller (its state directory is inside the
# temporary one). Then a few lines the README promises are checked in
# what it printed. Exit 0 when all of it holds; otherwise the transcript is printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$(realpath "${1:?usage: scripts/readme-blocks.sh PATH/TO/evl}")"
[ -x "$bin" ] || { echo "readme-blocks: $bin is not an executable" >&2; exit 2; }

work="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] && cp "$work/out.txt" "$KEEP"; rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/tmp" "$work/checkout"
ln -s "$bin" "$work/bin/evl"
cp -r "$root/examples" "$work/checkout/examples"

# The ```sh blocks after the first, verbatim.
awk '/^```sh$/ { n++; inside = 1; next } /^```$/ { inside = 0; next } inside && n > 1' \
    "$root/README.md" >"$work/readme.sh"
blocks="$(grep -c '^```sh$' "$root/README.md")"
[ "$blocks" -ge 3 ] || { echo "readme-blocks: README.md has $blocks sh blocks; expected the tour and the gate section" >&2; exit 1; }

status=0
(cd "$work/checkout" && env -u EVL_LEDGER -u EVL_KEY -u EVL_STATE_DIR PATH="$work/bin:$PATH" TMPDIR="$work/tmp" \
    XDG_STATE_HOME="$work/state" \
    bash -euo pipefail "$work/readme.sh") >"$work/out.txt" 2>&1 || status=$?
fail() {
    cat "$work/out.txt"
    echo "readme-blocks: $1" >&2
    exit 1
}
[ "$status" -eq 0 ] || fail "the README's shell blocks exited $status (transcript above)"

# What the README says the gate section shows.
for want in \
    'RECOMMENDATION: NARROW' \
    'acknowledgment-missing                 namespace data-platform' \
    'compatibility-unresolved               workload orders/orders-journal-writer' \
    'compatibility-unresolved               workload payments/payments-ledger-sync' \
    'exception-expires-before-checkpoint    exception mesh-cert-exc-117' \
    'exception-expires-before-checkpoint    exception mesh-cert-exc-122' \
    'rollback-drill-stale                   path legacy-grpc-settlement-adapter' \
    're-derives byte for byte from its basis (engine evl-engine/3)' \
    'exit 10: HOLD fails the job' \
    'verified offline: '; do
    grep -qF -- "$want" "$work/out.txt" || fail "the transcript lacks: $want"
done
grep -qE '^PASS: ([0-9]+)/\1$' "$work/out.txt" || fail "the gate's test cases did not all pass"
echo "readme-blocks: $((blocks - 1)) README block(s) ran as written; $(wc -l <"$work/readme.sh") lines"
