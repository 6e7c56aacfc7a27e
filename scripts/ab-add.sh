#!/usr/bin/env bash
# Interleaved wall-clock A/B of `evl add` (a two-line inventory CSV, on a ledger of a few hundred
# entries) and `evl --version` for two release binaries on one host: each run alternates the order;
# medians. Two kinds of add: `inventory-export` exactly as bench-e2e's CLI single append (the
# figure of docs/PERFORMANCE.md; evl stores it unparsed), and `workload-inventory`, which the
# importer parses (issue 14's CSV reader) before storing. For instruction counts, see
# scripts/ab-callgrind.sh.
# PRELOAD entries (one `evl add` of that many files) go in first: bench-e2e's ledger holds 5,000+.
# Usage: bash scripts/ab-add.sh OLD_EVL NEW_EVL WORK_DIR [N=200] [PRELOAD=0]   (WORK_DIR is wiped; needs python3)
set -e
old=$1; new=$2; w=$3; n=${4:-200}; preload=${5:-0}
rm -rf $w; mkdir -p $w
for tag in old new; do
  bin=${!tag}; d=$w/$tag; mkdir -p $d
  XDG_STATE_HOME=$d/state $bin keygen admin --dir $d >/dev/null; $bin keygen alice --dir $d >/dev/null
  EVL_LEDGER=$d/l $bin init --origin example.org/ab --admin $d/admin.pub --key $d/admin.key >/dev/null 2>&1
  EVL_LEDGER=$d/l $bin key add alice --pub $d/alice.pub --role owner --role reviewer --key $d/admin.key >/dev/null
  if [ "$preload" -gt 0 ]; then
    mkdir -p $d/pre
    for i in $(seq $preload); do printf 'namespace,workload\npayments,pre-%d\n' $i > $d/pre/$i.csv; done
    EVL_LEDGER=$d/l $bin add --kind inventory-export --tier operational --namespace payments --key $d/alice.key $d/pre/*.csv >/dev/null
  fi
done
for i in $(seq $((n+20))); do printf 'namespace,workload,owner,stateful,sidecar_mode,compatibility,ambient_ready,exception_ids,catalog_tier\npayments,api-%d,team@example.com,false,injected,validated,yes,,tier-1\n' $i > $w/f$i.csv; sed 's/api-/svc-/' $w/f$i.csv > $w/p$i.csv; done
python3 - "$old" "$new" "$w" "$n" <<'PY'
import subprocess,sys,time,os,statistics
old,new,w,n=sys.argv[1],sys.argv[2],sys.argv[3],int(sys.argv[4])
res={k:[] for k in ('old','new','oldv','newv','oldp','newp')}
for i in range(1,n+1):
    for tag,b in (('old',old),('new',new)) if i%2 else (('new',new),('old',old)):
        env=dict(os.environ, EVL_LEDGER=f"{w}/{tag}/l", XDG_STATE_HOME=f"{w}/{tag}/state")
        t=time.perf_counter(); subprocess.run([b,"add","--kind","inventory-export","--tier","operational","--namespace","payments","--key",f"{w}/{tag}/alice.key",f"{w}/f{i}.csv"],env=env,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,check=True); res[tag].append(time.perf_counter()-t)
        t=time.perf_counter(); subprocess.run([b,"add",f"{w}/p{i}.csv","--kind","workload-inventory","--tier","operational","--key",f"{w}/{tag}/alice.key"],env=env,stdout=subprocess.DEVNULL,check=True); res[tag+'p'].append(time.perf_counter()-t)
        t=time.perf_counter(); subprocess.run([b,"--version"],stdout=subprocess.DEVNULL,check=True); res[tag+'v'].append(time.perf_counter()-t)
m=lambda k: statistics.median(res[k])*1e6
print(f"evl add (inventory-export, as bench-e2e) median: old {m('old'):.0f} us, new {m('new'):.0f} us, new/old {m('new')/m('old'):.3f}")
print(f"evl add (workload-inventory, parsed) median: old {m('oldp'):.0f} us, new {m('newp'):.0f} us, new/old {m('newp')/m('oldp'):.3f}")
print(f"--version median: old {m('oldv'):.0f} us, new {m('newv'):.0f} us, new/old {m('newv')/m('oldv'):.3f}")
PY
