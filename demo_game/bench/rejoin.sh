#!/usr/bin/env bash
# Rejoin figures: RUNS times, three headless bot demos play a match on loopback
# (the first hosts the signaling server). A second into the match the third is
# killed (SIGKILL); once the others play on without it, it is started again with
# the same flags plus --rejoin. Per run: ms from the restarted process's start to
# its "rejoined the match" line (it has its seat back, the state imported and is
# simulating again), the handover's size and its transfer time, and whether all
# three then finish with the same checksum. Then the p50 and max.
# Usage: demo_game/bench/rejoin.sh [release|dev] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-release}
runs=${2:-10}
if [ "$profile" = release ]; then
  cargo build --release -p rtcplay_demo >&2
  bin=${CARGO_TARGET_DIR:-target}/release/rtcplay-demo
else
  cargo build -p rtcplay_demo >&2
  bin=${CARGO_TARGET_DIR:-target}/debug/rtcplay-demo
fi
wait_for() { # file pattern seconds
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; return 1; }
    sleep 0.005
  done
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
times=()
for run in $(seq "$runs"); do
  out=$(mktemp -d)
  export RTCPLAY_DEMO_STATE_DIR="$out/state"
  common=(--headless --bot --players 3 --frames 1200 --room "rejoin-bench-$run")
  "$bin" --host 127.0.0.1:0 "${common[@]}" >"$out/0" 2>&1 &
  pids=($!)
  wait_for "$out/0" "listening on" 30
  url=$(grep -o 'ws://[0-9.:]*' "$out/0" | head -1)
  "$bin" --signal "$url" "${common[@]}" >"$out/1" 2>&1 &
  pids+=($!)
  "$bin" --signal "$url" "${common[@]}" >"$out/2" 2>&1 &
  victim=$!
  wait_for "$out/2" "stats: frame" 60
  kill -9 "$victim"; wait "$victim" 2>/dev/null || true
  wait_for "$out/1" "playing on without it" 20
  start=$(now_ms)
  "$bin" --signal "$url" "${common[@]}" --rejoin >"$out/3" 2>&1 &
  pids+=($!)
  wait_for "$out/3" "rejoined the match" 30
  ms=$(($(now_ms) - start))
  times+=("$ms")
  ok=0
  for p in "${pids[@]}"; do wait "$p" || ok=1; done
  sums=$(grep -ho 'checksum [0-9a-f]*' "$out/0" "$out/1" "$out/3" | sort -u | wc -l)
  detail=$(grep -o '([0-9]* bytes in [0-9.]* ms)' "$out/3")
  echo "run $run: back in $ms ms after the restart, state $detail, exits $([ $ok = 0 ] && echo clean || echo FAILED), checksums $([ "$sums" = 1 ] && echo equal || echo DIFFER)"
  rm -rf "$out"
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
n=${#sorted[@]}
echo "rejoin, process start to playing: p50 ${sorted[$(((n - 1) / 2))]} ms, max ${sorted[$((n - 1))]} ms over $n runs"
