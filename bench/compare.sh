#!/usr/bin/env bash
# Side-by-side benchmark: erpc against the frameworks of ../shared/bench-peers on the same
# workload (581-byte protobuf BenchmarkMessage, server and client in separate processes on
# loopback), runs interleaved, medians printed as a markdown table.
#
#   bench/compare.sh                                  # c=100,1000  n=200000  3 runs
#   C=100,1000,5000 N=200000 RUNS=3 FRAMEWORKS=raw,raw-conns,tarpc,tonic bench/compare.sh
#   IDLE=4000 FRAMEWORKS=raw-conns bench/compare.sh   # also: server RSS per idle session
#
# Rows: every bench-peers framework, `erpc` (all workers multiplexed on one session, like
# raw/tarpc/tonic), and, when raw-conns is in FRAMEWORKS, `erpc-conns` (`erpc bench --conns C`:
# one session per worker, the same shape as raw-conns' one connection per worker).
# C=5000 with raw-conns opens 5000 connections per process: `erpc bench` raises its own
# open-files limit, bench-peers does not, so run under `ulimit -n 20000` or so.
#
# IDLE=N (off by default) first measures `erpc bench --idle N` against `erpc serve` and, when
# raw-conns is in FRAMEWORKS, against `bench-peers server --framework raw-conns`: the server's
# RSS growth per connection that never sends anything (printed as a second table).
#
# Environment: C, N, RUNS, FRAMEWORKS, IDLE; JSONL (every JSON line is appended to it,
# default bench/results.jsonl); CARGO_TARGET_DIR (where erpc is built, default ./target);
# PEERS_TARGET (where bench-peers is built, default ./target/bench-peers); PEERS_FEATURES
# (cargo flags for bench-peers, e.g. "--no-default-features --features tarpc": the raw
# baselines are always built); ERPC / PEER_BIN (use these binaries, build nothing).
# Needs python3 for the tables.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="$root/../shared/bench-peers"
peers_target="${PEERS_TARGET:-$root/target/bench-peers}"
C="${C:-100,1000}"; N="${N:-200000}"; RUNS="${RUNS:-3}"; IDLE="${IDLE:-}"
FRAMEWORKS="${FRAMEWORKS:-raw,raw-echo,raw-conns,tarpc,tonic,volo-grpc,volo-thrift}"
JSONL="${JSONL:-$root/bench/results.jsonl}"

if [[ -z "${ERPC:-}" ]]; then
  (cd "$root" && cargo build --release --quiet -p erpc-cli)
  ERPC="${CARGO_TARGET_DIR:-$root/target}/release/erpc"
fi
if [[ -z "${PEER_BIN:-}" ]]; then
  # shellcheck disable=SC2086 # PEERS_FEATURES is a list of cargo flags
  (cd "$peers" && CARGO_TARGET_DIR="$peers_target" cargo build --release --quiet ${PEERS_FEATURES:-})
  PEER_BIN="$peers_target/release/bench-peers"
fi

IFS=, read -r -a concurrencies <<< "$C"
IFS=, read -r -a frameworks <<< "$FRAMEWORKS"
has_raw_conns=0
for fw in "${frameworks[@]}"; do [[ "$fw" == raw-conns ]] && has_raw_conns=1; done

if [[ -n "$IDLE" ]]; then
  echo "idle: $IDLE sessions, erpc" >&2
  "$ERPC" bench --json --idle "$IDLE" | tee -a "$JSONL"
  if [[ $has_raw_conns == 1 ]]; then
    echo "idle: $IDLE sessions, raw-conns" >&2
    "$ERPC" bench --json --idle "$IDLE" --name raw-conns -- \
      "$PEER_BIN" server --exit-on-stdin-eof --framework raw-conns --addr '{addr}' | tee -a "$JSONL"
  fi
fi

for run in $(seq 1 "$RUNS"); do
  for c in "${concurrencies[@]}"; do
    for fw in "${frameworks[@]}"; do
      echo "run $run/$RUNS c=$c $fw" >&2
      "$PEER_BIN" run --framework "$fw" -c "$c" -n "$N" 2>/dev/null | tee -a "$JSONL"
      if [[ "$fw" == raw-conns ]]; then
        echo "run $run/$RUNS c=$c erpc-conns" >&2
        "$ERPC" bench --json -c "$c" -n "$N" --conns "$c" --name erpc-conns | tee -a "$JSONL"
      fi
    done
    echo "run $run/$RUNS c=$c erpc" >&2
    "$ERPC" bench --json -c "$c" -n "$N" | tee -a "$JSONL"
  done
done

python3 - "$JSONL" "$N" "$IDLE" <<'PY'
import json, statistics, sys
rows, idle = {}, {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "idle_sessions" in r:
        if sys.argv[3] and r["idle_sessions"] == int(sys.argv[3]):
            idle.setdefault(r["framework"], []).append(r)
        continue
    if r.get("total") != int(sys.argv[2]):
        continue
    rows.setdefault((r["concurrency"], r["framework"]), []).append(r)
print("| framework | c | runs | calls/s (median) | p50 µs | p99 µs | p99.9 µs | CPU µs/call |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (c, fw) in sorted(rows):
    rs = rows[(c, fw)]
    med = lambda k: statistics.median(r[k] for r in rs if r.get(k) is not None) if any(r.get(k) is not None for r in rs) else float("nan")
    print(f"| {fw} | {c} | {len(rs)} | {med('throughput'):.0f} | {med('p50_us'):.0f} | {med('p99_us'):.0f} | {med('p999_us'):.0f} | {med('cpu_us_per_call'):.1f} |")
if idle:
    print()
    print("| server | idle sessions | runs | KiB/session (median) | RSS before KiB | RSS after KiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for fw in sorted(idle):
        rs = idle[fw]
        med = lambda k: statistics.median(r[k] for r in rs)
        print(f"| {fw} | {sys.argv[3]} | {len(rs)} | {med('kib_per_session'):.2f} | {med('rss_before_kib'):.0f} | {med('rss_after_kib'):.0f} |")
PY
