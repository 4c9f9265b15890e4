#!/usr/bin/env bash
# bench-fps.sh: measure the arena's frame rate in a real window under Xvfb
# (software GL: Mesa llvmpipe), with the AI playing the human's player and
# BOTS bot clients in the same process, for SECONDS.
#
# Usage: bash demo/arena/scripts/bench-fps.sh [BOTS] [SECONDS] [WxH]
#   defaults: 15 bots (16 players), 30 s, 1280x720
#
# Prints the frames per second (mean and worst one-second window, the first
# two seconds skipped), the CPU time the game process used per frame (all
# its threads: game, llvmpipe rasterizers, bots, embedded server), the
# machine's load average, which says how much other work competed, and the
# floor: the frame rate of an Ebitengine window that only fills itself
# (scripts/ebitenfloor), measured just before.
# Needs Xvfb and the GL libraries: bash scripts/deps.sh --demo.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
shared=${SKEIN_SHARED:-$(dirname "$root")/shared}
bots=${1:-15} secs=${2:-30} size=${3:-1280x720}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/arena-bench.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && go build -o "$tmp/arena" ./demo/arena && go build -o "$tmp/floor" ./demo/arena/scripts/ebitenfloor)
w=${size%x*} h=${size#*x}
# The floor: an Ebitengine window that only fills itself every frame.
bash "$shared/scripts/xvfb-screenshot.sh" -q -s "${size}x24" -d 1 -o "$tmp/floor.png" -W "Skein Arena floor" -- \
  /usr/bin/time -f "%U %S" -o "$tmp/floortime" "$tmp/floor" -w "$w" -h "$h" -d 10s >"$tmp/floor.out"
load0=$(cut -d' ' -f1 /proc/loadavg)
bash "$shared/scripts/xvfb-screenshot.sh" -q -s "${size}x24" -d $((secs / 2)) -o "$tmp/shot.png" -W "Skein Arena" -- \
  /usr/bin/time -f "%U %S" -o "$tmp/time" "$tmp/arena" -autoplay -mute -bots "$bots" -exit-after "${secs}s" -stats "$tmp/stats.json" -log off
load1=$(cut -d' ' -f1 /proc/loadavg)
python3 - "$tmp/stats.json" "$tmp/time" "$bots" "$size" "$load0" "$load1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
u, k = map(float, open(sys.argv[2]).read().split()[-2:])
frames = max(s["frames"], 1)
print(f"players {s['players']} ({int(sys.argv[3])} bots + you), window {sys.argv[4]}, {s['seconds']:.0f} s")
print(f"fps mean {s['fps_mean']:.1f}, worst second {s['fps_min']:.1f}, ticks {s['ticks']} ({s['ticks']/s['seconds']:.1f}/s)")
print("fps each second:", " ".join(f"{f:.0f}" for f in s["fps_per_second"]))
print(f"game process CPU {u+k:.1f} s ({(u+k)/s['seconds']*100:.0f}% of one core), {1000*(u+k)/frames:.1f} ms per frame")
print(f"this client (the host): up {s['bytes_out']/s['net_seconds']/1000:.1f} kB/s, down {s['bytes_in']/s['net_seconds']/1000:.1f} kB/s")
print(f"load average before/after: {sys.argv[5]} / {sys.argv[6]}")
PY
fu=$(awk '{print $1+$2}' "$tmp/floortime")
echo "floor (an empty Ebitengine window filled every frame): $(sed 's/ebitenfloor: //' "$tmp/floor.out"), CPU ${fu} s in 10 s"
