#!/usr/bin/env bash
# End-to-end demo figures per conditioner preset: two headless bot processes play
# FRAMES frames over WebRTC on loopback (the first hosts the signaling server); each
# prints its summary (fps, rollbacks/s, mean and max depth, kbps per peer).
# Usage: demo_game/bench/e2e.sh [release|dev] [FRAMES] [PLAYERS]
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-release}
frames=${2:-1800}
players=${3:-2}
if [ "$profile" = release ]; then
  cargo build --release -p rtcplay_demo >&2
  bin=${CARGO_TARGET_DIR:-target}/release/rtcplay-demo
else
  cargo build -p rtcplay_demo >&2
  bin=${CARGO_TARGET_DIR:-target}/debug/rtcplay-demo
fi
for preset in perfect lan good average poor lossy; do
  out=$(mktemp -d)
  common=(--headless --bot --players "$players" --frames "$frames" --room "bench-$preset" --netem "$preset")
  "$bin" --host 127.0.0.1:0 "${common[@]}" >"$out/0" 2>&1 &
  pids=($!)
  for _ in $(seq 50); do grep -q "listening on" "$out/0" && break; sleep 0.1; done
  url=$(grep -o 'ws://[0-9.:]*' "$out/0" | head -1)
  for i in $(seq 1 $((players - 1))); do
    "$bin" --signal "$url" "${common[@]}" >"$out/$i" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || echo "process $p failed" >&2; done
  for i in $(seq 0 $((players - 1))); do
    echo "$preset peer$i $(grep -h '^summary:' "$out/$i" | sed 's/^summary: //') | $(grep -ho 'checksum [0-9a-f]*' "$out/$i")"
  done
  rm -rf "$out"
done
