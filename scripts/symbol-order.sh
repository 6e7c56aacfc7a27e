#!/usr/bin/env bash
# Writes scripts/evl.symbol-order: the functions evl runs for the verbs people run one item at
# a time (add, annotate, ack, show, log, cat, proof, verify, --version), in the order they are
# first called, the single append first. scripts/build-release.sh hands it to the linker so
# that these functions sit together and starting `evl` maps a few dozen pages of code instead
# of most of the binary (docs/PERFORMANCE.md, "Start-up").
#
# The names are the linker's (mangled, with the hashes cargo derives from the target and the
# dependency graph), so the file belongs to one Cargo.lock and one toolchain: regenerate it
# after changing either (build-release.sh warns when most names are missing). Editing evl's
# source keeps the names; new functions are just not ordered until the next run.
#
# Needs valgrind (callgrind lists every function a run executes, mangled) and the musl build.
# Usage: bash scripts/symbol-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || {
    echo "symbol-order: needs valgrind" >&2
    exit 2
}
bin="$PWD/$(EVL_NO_ORDER=1 bash scripts/build-release.sh)"
case "$bin" in
*-musl/*) ;;
*)
    echo "symbol-order: the release build is not the musl one ($bin); nothing to order" >&2
    exit 2
    ;;
esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export EVL_LEDGER="$work/ledger" EVL_KEY="$work/alice.key"
# verify keeps auditor state per origin: a fresh ledger each run must not meet the last one's.
export XDG_STATE_HOME="$work/state"
unset EVL_STATE_DIR
"$bin" keygen admin --dir "$work" >/dev/null
"$bin" keygen alice --dir "$work" >/dev/null
"$bin" init --origin example.org/order --admin "$work/admin.pub" --key "$work/admin.key" >/dev/null
"$bin" key add alice --pub "$work/alice.pub" --role owner --role reviewer --role security-signer \
    --key "$work/admin.key" >/dev/null
# Inventories as `evl add` validates them (docs/IMPORTERS.md: every required column).
for i in $(seq 50); do
    printf 'namespace,workload,owner,stateful,sidecar_mode,compatibility,ambient_ready,exception_ids,catalog_tier\npayments,api-%d,team@example.com,false,injected,validated,yes,,tier-1\n' "$i" >"$work/item-$i.csv"
done
"$bin" add "$work"/item-{1..40}.csv --kind workload-inventory --tier operational >/dev/null

n=0
trace() {
    n=$((n + 1))
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" \
        "$bin" "$@" >/dev/null 2>&1 || {
        echo "symbol-order: evl $* failed under valgrind" >&2
        exit 1
    }
}
trace add "$work/item-41.csv" --kind workload-inventory --tier operational --namespace payments
trace add "$work/item-42.csv" "$work/item-44.csv" --kind runbook --tier authoritative
id="$("$bin" add "$work/item-43.csv" --kind workload-inventory --tier operational | awk '{print $2}')"
content="$("$bin" show "$id" --json | sed -n 's/.*"content": "\([0-9a-f]*\)".*/\1/p')"
trace annotate "$id" --kind note --text "reviewed"
trace ack --topic east-west-authorization-policy --subject "$id" --namespace payments \
    --statement "acknowledged"
trace --version
trace show "$id"
trace log
trace cat "$content"
trace proof inclusion "$id"
trace verify

# Every function named in a run, in order of first appearance (callgrind names a function the
# first time it is either the caller `fn=` or the callee `cfn=`), the append's run first.
for i in $(seq "$n"); do
    sed -n 's/^c\{0,1\}fn=([0-9]*) //p' "$work/cg.$i"
done | awk '!seen[$0]++' >"$work/order"
nm "$bin" | awk '{print $NF}' | sort -u >"$work/symbols"
grep -xFf "$work/symbols" "$work/order" >scripts/evl.symbol-order
echo "symbol-order: $(wc -l <scripts/evl.symbol-order) functions in scripts/evl.symbol-order" >&2
