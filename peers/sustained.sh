#!/usr/bin/env bash
# Sampled spans at sustained rates into a real collector (rotel, exporting
# to a blackhole), telemark's #[traced] beside the OpenTelemetry SDK's
# in_span with its batch span processor, both over OTLP/gRPC with their
# default settings: per rate, the spans dropped, the calling thread's
# latency per call (p50, p99, p999, max) and the peak resident memory.
#   bash peers/sustained.sh [seconds per rate] [rates...]
# ROTEL names rotel-agent (default: the one `pip install rotel` puts in
# the Python found first).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
rates=${*:-"50000 100000 150000 200000"}
rotel=${ROTEL:-$(python3 -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')}
cargo build --release -q -p telemark-peers --bin sustained
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
http_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"$rotel" start --otlp-grpc-endpoint "127.0.0.1:$port" --otlp-http-endpoint "127.0.0.1:$http_port" \
  --exporter blackhole >"$log" 2>&1 &
collector=$!
trap 'kill $collector 2>/dev/null; rm -f "$log"' EXIT
sleep 1
printf '%-9s %8s %10s %9s %8s %8s %9s %11s %9s\n' case rate calls dropped p50_ns p99_ns p999_ns max_ns rss_kib
for rate in $rates; do
  for case in telemark sdk; do
    target/release/sustained "$case" "$rate" "$seconds" "http://127.0.0.1:$port" |
      awk '{ printf "%-9s %8s %10s %9s %8s %8s %9s %11s %9s\n", $1, $3, $5, $9, $11, $13, $15, $17, $19 }'
  done
done
