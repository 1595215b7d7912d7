#!/usr/bin/env bash
# What a Python plugin costs, beside a Rust one, measured the same way in one
# run (plugins/languages/python.md shows the figures and says how to read
# them). Usage: plugins/python/measure.sh FAULTGATE PY_JITTER_WASM
#
# For each of py_jitter (Python, uploaded) and the built-in latency (Rust):
# - attach: the time of POST /proxies/P/toxics, median of 20 toxics;
# - memory: faultgate's RSS (/proc/PID/status) after those 20 toxics, less
#   before, over 20: one instance each;
# - per call: 2,000 round trips of 16 bytes through an echo server on
#   loopback with one such toxic (latency 0) on the upstream stream, less
#   the same with no toxic, over 2,000: one on-data call each.
# faultgate runs with --plugin-deadline-ms 1000: on a busy machine a Python
# instance's create can pass the default 100 ms. Everything on loopback; the API and proxies on ports 18574-18576.
set -euo pipefail
faultgate=$1
wasm=$2
api=127.0.0.1:18574
work=$(mktemp -d)
trap 'tail -5 "$work/serve.log" >&2; kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT

python3 - >"$work/echo.log" 2>&1 <<'PY' &
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18575)); s.listen()
def serve(c):
    while (d := c.recv(65536)):
        c.sendall(d)
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
PY
echo $! >"$work/echo.pid"
cache=${3:-$work/cache}; mkdir -p -m 700 "$cache"
RUST_LOG=warn "$faultgate" serve --api "$api" --seed 1 --plugin-deadline-ms 1000 --plugin-cache "$cache" >"$work/serve.log" 2>&1 &
echo $! >"$work/serve.pid"
pid=$(cat "$work/serve.pid")
for _ in $(seq 100); do curl -sf "$api/version" >/dev/null && break; sleep 0.2; done

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
start=$(date +%s.%N)
curl -sf -H 'Content-Type: application/wasm' --data-binary @"$wasm" "$api/plugins" >/dev/null
echo "upload (compile) of $(basename "$wasm"): $(echo "$(date +%s.%N) - $start" | bc) s, $(stat -c %s "$wasm") bytes"

round_trips() {
  python3 - <<'PY'
import socket, time
s = socket.create_connection(("127.0.0.1", 18576)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
t = time.perf_counter()
for _ in range(2000):
    s.sendall(b"0123456789abcdef")
    got = b""
    while len(got) < 16:
        got += s.recv(16 - len(got))
print((time.perf_counter() - t) / 2000 * 1e6)
PY
}

for type in py_jitter latency; do
  curl -sf -X DELETE "$api/proxies/m" >/dev/null 2>&1 || true
  curl -sf "$api/proxies" -d '{"name":"m","listen":"127.0.0.1:18576","upstream":"127.0.0.1:18575"}' >/dev/null
  base=$(round_trips)
  before=$(rss_kb)
  times=()
  for i in $(seq 20); do
    answer=$(curl -s -o "$work/attach.out" -w '%{http_code} %{time_total}' "$api/proxies/m/toxics" \
      -d "{\"name\":\"t$i\",\"type\":\"$type\",\"stream\":\"downstream\",\"attributes\":{\"latency\":0}}")
    [ "${answer% *}" = 200 ] || { echo "attaching $type t$i: $answer $(cat "$work/attach.out")" >&2; exit 1; }
    times+=("${answer#* }")
  done
  after=$(rss_kb)
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 10p)
  for i in $(seq 20); do curl -sf -X DELETE "$api/proxies/m/toxics/t$i" >/dev/null; done
  curl -sf "$api/proxies/m/toxics" -d "{\"name\":\"one\",\"type\":\"$type\",\"stream\":\"upstream\",\"attributes\":{\"latency\":0}}" >/dev/null
  with=$(round_trips)
  printf '%s: attach %.1f ms (median of 20), %d KiB RSS per toxic, %.1f us per call (round trip %.1f us, %.1f us without)\n' \
    "$type" "$(echo "$median * 1000" | bc)" $(((after - before) / 20)) "$(echo "$with - $base" | bc)" "$with" "$base"
done
