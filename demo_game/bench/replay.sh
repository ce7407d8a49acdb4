#!/usr/bin/env bash
# Replay figures: two headless bot demos play FRAMES frames (36000 = 10 minutes
# at 60 Hz, in real time) on loopback, each recording its replay. Prints each
# file's size, replays each headless (the checksum must be the live one, every
# recorded checksum verified), then seeks to SEEKS frames spread over the match
# in one of them and prints the p50 and max seek time.
# Usage: demo_game/bench/replay.sh [release|dev] [FRAMES] [SEEKS]
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=${1:-release}
frames=${2:-36000}
seeks=${3:-50}
if [ "$profile" = release ]; then
  cargo build --release -p rtcplay_demo >&2
  bin=${CARGO_TARGET_DIR:-target}/release/rtcplay-demo
else
  cargo build -p rtcplay_demo >&2
  bin=${CARGO_TARGET_DIR:-target}/debug/rtcplay-demo
fi
out=$(mktemp -d)
export RTCPLAY_DEMO_STATE_DIR="$out/state"
common=(--headless --bot --players 2 --frames "$frames" --room replay-bench)
"$bin" --host 127.0.0.1:0 "${common[@]}" --record "$out/a.rtcreplay" >"$out/a" 2>&1 &
host=$!
until grep -q "listening on" "$out/a" 2>/dev/null; do sleep 0.05; done
url=$(grep -o 'ws://[0-9.:]*' "$out/a" | head -1)
"$bin" --signal "$url" "${common[@]}" --record "$out/b.rtcreplay" >"$out/b" 2>&1
wait "$host"
live=$(grep -o 'checksum [0-9a-f]*' "$out/a")
for p in a b; do
  size=$(stat -c %s "$out/$p.rtcreplay")
  replayed=$("$bin" --replay "$out/$p.rtcreplay" --frames "$frames" 2>&1)
  sum=$(echo "$replayed" | grep -o 'checksum [0-9a-f]*')
  verified=$(echo "$replayed" | grep -o 'replay: [0-9]* recorded checksums verified')
  echo "player $p: $frames frames, replay $size bytes; replayed $sum ($([ "$sum" = "$live" ] && echo equal to the live one || echo DIFFERS from the live $live)), $verified"
done
times=($("$bin" --replay "$out/a.rtcreplay" --seek-bench "$seeks" | grep -o '^seek to [0-9]*: [0-9.]*' | awk '{print $4}'))
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
n=${#sorted[@]}
echo "seek to any frame: p50 ${sorted[$(((n - 1) / 2))]} ms, max ${sorted[$((n - 1))]} ms over $n seeks"
rm -rf "$out"
