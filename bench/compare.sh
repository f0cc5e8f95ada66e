#!/usr/bin/env bash
# Side-by-side benchmark: erpc against the frameworks of ../shared/bench-peers on the same
# workload (581-byte protobuf BenchmarkMessage, server and client in separate processes on
# loopback), runs interleaved, medians printed as a markdown table.
#
#   bench/compare.sh                                  # c=100,1000  n=200000  3 runs
#   C=100,1000,5000 N=200000 RUNS=3 FRAMEWORKS=raw,raw-echo,tarpc,tonic bench/compare.sh
#
# Every JSON line is appended to ${JSONL:-bench/results.jsonl}. Needs python3 for the table.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="$root/../shared/bench-peers"
peers_target="${PEERS_TARGET:-$root/target/bench-peers}"
C="${C:-100,1000}"; N="${N:-200000}"; RUNS="${RUNS:-3}"
FRAMEWORKS="${FRAMEWORKS:-raw,raw-echo,tarpc,tonic,volo-grpc,volo-thrift}"
JSONL="${JSONL:-$root/bench/results.jsonl}"

(cd "$root" && cargo build --release --quiet -p erpc-cli)
(cd "$peers" && CARGO_TARGET_DIR="$peers_target" cargo build --release --quiet)
erpc="$root/target/release/erpc"
peer_bin="$peers_target/release/bench-peers"

IFS=, read -r -a concurrencies <<< "$C"
IFS=, read -r -a frameworks <<< "$FRAMEWORKS"
for run in $(seq 1 "$RUNS"); do
  for c in "${concurrencies[@]}"; do
    for fw in "${frameworks[@]}"; do
      echo "run $run/$RUNS c=$c $fw" >&2
      "$peer_bin" run --framework "$fw" -c "$c" -n "$N" 2>/dev/null | tee -a "$JSONL"
    done
    echo "run $run/$RUNS c=$c erpc" >&2
    "$erpc" bench --json -c "$c" -n "$N" | tee -a "$JSONL"
  done
done

python3 - "$JSONL" "$N" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r["total"] != int(sys.argv[2]):
        continue
    rows.setdefault((r["concurrency"], r["framework"]), []).append(r)
print("| framework | c | runs | calls/s (median) | p50 µs | p99 µs | p99.9 µs | CPU µs/call |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (c, fw) in sorted(rows):
    rs = rows[(c, fw)]
    med = lambda k: statistics.median(r[k] for r in rs if r.get(k) is not None) if any(r.get(k) is not None for r in rs) else float("nan")
    print(f"| {fw} | {c} | {len(rs)} | {med('throughput'):.0f} | {med('p50_us'):.0f} | {med('p99_us'):.0f} | {med('p999_us'):.0f} | {med('cpu_us_per_call'):.1f} |")
PY
