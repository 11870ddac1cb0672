#!/usr/bin/env bash
# Sampled spans at sustained rates into a real collector (rotel, exporting
# to a blackhole), telemark's #[traced] beside the OpenTelemetry SDK's
# in_span with its batch span processor, both over OTLP/gRPC with their
# default settings: per rate, the spans dropped, the calling thread's
# latency per call (p50, p99, p999, max) and the peak resident memory.
#   bash peers/sustained.sh [seconds per rate] [rates...]
# The collector is started by peers/with_rotel.sh (ROTEL names
# rotel-agent).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${OTLP_ENDPOINT:-}" ]; then
  exec bash peers/with_rotel.sh bash peers/sustained.sh "$@"
fi
seconds=${1:-30}
shift || true
rates=${*:-"50000 100000 150000 200000"}
cargo build --release -q -p telemark-peers --bin sustained
printf '%-9s %8s %10s %9s %8s %8s %9s %11s %9s\n' case rate calls dropped p50_ns p99_ns p999_ns max_ns rss_kib
for rate in $rates; do
  for case in telemark sdk; do
    target/release/sustained "$case" "$rate" "$seconds" "$OTLP_ENDPOINT" |
      awk '{ printf "%-9s %8s %10s %9s %8s %8s %9s %11s %9s\n", $1, $3, $5, $9, $11, $13, $15, $17, $19 }'
  done
done
