#!/usr/bin/env bash
# Instruction counts of one `evl add` (on a ledger of ~3,000 entries, after two warm-up adds) and
# of `evl --version`, under callgrind: load-independent, for A/B of two builds on one host.
# Usage: bash scripts/ab-callgrind.sh EVL_BINARY WORK_DIR   (WORK_DIR is wiped; needs valgrind)
set -e
bin="${1:?usage: ab-callgrind.sh EVL_BINARY WORK_DIR}"; w="${2:?usage: ab-callgrind.sh EVL_BINARY WORK_DIR}"
rm -rf "$w"; mkdir -p "$w"
export XDG_STATE_HOME=$w/state
$bin keygen admin --dir $w >/dev/null; $bin keygen alice --dir $w >/dev/null
$bin init --ledger $w/l --origin example.org/ab --admin $w/admin.pub --key $w/admin.key >/dev/null 2>&1 || EVL_LEDGER=$w/l $bin init --origin example.org/ab --admin $w/admin.pub --key $w/admin.key >/dev/null
export EVL_LEDGER=$w/l
$bin key add alice --pub $w/alice.pub --role owner --role reviewer --key $w/admin.key >/dev/null
for i in $(seq 3000); do printf 'namespace,workload,owner,stateful,sidecar_mode,compatibility,ambient_ready,exception_ids,catalog_tier\npayments,api-%d,team@example.com,false,injected,validated,yes,,tier-1\n' $i > $w/f$i.csv; done
$bin add $w/f{1..2990}.csv --kind workload-inventory --tier operational --key $w/alice.key >/dev/null
$bin add $w/f2991.csv --kind workload-inventory --tier operational --key $w/alice.key >/dev/null
$bin add $w/f2992.csv --kind workload-inventory --tier operational --key $w/alice.key >/dev/null
valgrind --tool=callgrind --callgrind-out-file=$w/cg.add $bin add $w/f2993.csv --kind workload-inventory --tier operational --key $w/alice.key 2>&1 | grep -E "Collected" 
valgrind --tool=callgrind --callgrind-out-file=$w/cg.ver $bin --version 2>&1 | grep -E "Collected"
