#!/usr/bin/env bash
# Replication lag and throughput under write load (issue 7).
#
# Starts a corekey primary and a replica on loopback (ports 17101/17102 unless PRIMARY_PORT /
# REPLICA_PORT say otherwise), points the replica at the primary, runs redis-benchmark SET
# against the primary, samples every 100 ms how far the replica's acknowledged offset is
# behind the primary's (INFO replication: master_repl_offset - slave0 offset), and after the
# load stops measures how long the replica takes to acknowledge everything.
#
# Usage: bench/repl-lag.sh [corekey binary] [requests] [pipeline] [cores]
# Kills only the two servers it started (by PID), on exit however it exits.
set -euo pipefail

BIN=${1:-target/release/corekey}
REQUESTS=${2:-2000000}
PIPELINE=${3:-16}
CORES=${4:-1}
PP=${PRIMARY_PORT:-17101}
RP=${REPLICA_PORT:-17102}
DIR=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

mkdir -p "$DIR/p" "$DIR/r"
"$BIN" --port "$PP" --bind 127.0.0.1 --cores "$CORES" --dir "$DIR/p" >"$DIR/p.log" 2>&1 &
pids+=($!)
"$BIN" --port "$RP" --bind 127.0.0.1 --cores "$CORES" --dir "$DIR/r" >"$DIR/r.log" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 100); do
  redis-cli -p "$PP" ping >/dev/null 2>&1 && redis-cli -p "$RP" ping >/dev/null 2>&1 && { up=1; break; }
  sleep 0.1
done
if [[ $up == 0 ]]; then
  echo "the servers did not start (ports $PP/$RP in use?):" >&2
  cat "$DIR/p.log" "$DIR/r.log" >&2
  exit 1
fi
redis-cli -p "$RP" replicaof 127.0.0.1 "$PP" >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "$RP" info replication | grep -q 'master_link_status:up' && break
  sleep 0.1
done

field() { redis-cli -p "$PP" info replication | tr -d '\r' | sed -n "s/^$1:\(.*\)/\1/p"; }
slave_offset() { field slave0 | sed -n 's/.*offset=\([0-9]*\).*/\1/p'; }

start_offset=$(field master_repl_offset)
t0=$(date +%s.%N)
redis-benchmark -p "$PP" -t set -n "$REQUESTS" -P "$PIPELINE" -c 50 -r 1000000 -d 64 -q \
  >"$DIR/bench.txt" 2>&1 &
bench=$!
max_lag=0
samples=0
sum_lag=0
# Bounded: at most 10 minutes of samples.
for _ in $(seq 1 6000); do
  kill -0 "$bench" 2>/dev/null || break
  # Both offsets from one INFO reply, so they are read at the same moment.
  info=$(redis-cli -p "$PP" info replication | tr -d '\r')
  m=$(sed -n 's/^master_repl_offset:\(.*\)/\1/p' <<<"$info")
  s=$(sed -n 's/^slave0:.*offset=\([0-9]*\).*/\1/p' <<<"$info")
  if [[ -n "$m" && -n "$s" ]]; then
    lag=$((m - s)); ((lag > max_lag)) && max_lag=$lag
    sum_lag=$((sum_lag + lag)); samples=$((samples + 1))
  fi
  sleep 0.1
done
wait "$bench" || true
t1=$(date +%s.%N)
end_offset=$(field master_repl_offset)
# Catch-up: until the replica acknowledged the primary's final offset (at most 60 s).
for _ in $(seq 1 6000); do
  [[ "$(slave_offset)" == "$end_offset" ]] && break
  sleep 0.01
done
t2=$(date +%s.%N)

tr '\r' '\n' <"$DIR/bench.txt" | grep -v '^ *$' | tail -1
bytes=$((end_offset - start_offset))
awk -v b="$bytes" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v max="$max_lag" -v sum="$sum_lag" -v n="$samples" \
  -v dbp="$(redis-cli -p "$PP" dbsize)" -v dbr="$(redis-cli -p "$RP" dbsize)" 'BEGIN {
  printf "replicated %.1f MB in %.2f s of load: %.1f MB/s\n", b/1e6, t1-t0, b/1e6/(t1-t0);
  printf "lag while loaded (bytes behind, sampled every 100 ms): mean %.0f, max %d over %d samples\n", (n ? sum/n : 0), max, n;
  printf "caught up %.0f ms after the load stopped; dbsize primary %d, replica %d\n", (t2-t1)*1000, dbp, dbr;
}'
