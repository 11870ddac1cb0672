#!/usr/bin/env bash
# Runs a command beside a real OTLP collector: rotel on free local ports,
# exporting what it receives to a blackhole, its gRPC address in
# OTLP_ENDPOINT (and its HTTP one in OTLP_HTTP_ENDPOINT); stopped after.
#   bash peers/with_rotel.sh COMMAND [ARGS...]
#   bash peers/with_rotel.sh bash -c 'target/release/sustained telemark 100000 10 $OTLP_ENDPOINT'
# ROTEL names rotel-agent (default: the one `pip install rotel` puts in the
# Python found first).
set -euo pipefail
rotel=${ROTEL:-$(python3 -c 'import rotel, os; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
http_port=$(free_port)
log=$(mktemp)
"$rotel" start --otlp-grpc-endpoint "127.0.0.1:$port" --otlp-http-endpoint "127.0.0.1:$http_port" \
  --exporter blackhole >"$log" 2>&1 &
collector=$!
trap 'kill $collector 2>/dev/null; rm -f "$log"' EXIT
# Ready once its gRPC port takes connections; a collector that exited
# says why.
listening() {
  python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null
}
for _ in $(seq 1 100); do
  kill -0 "$collector" 2>/dev/null || { echo "rotel exited:"; cat "$log"; exit 1; }
  listening "$port" && break
  sleep 0.1
done
for wanted in "$port" "$http_port"; do
  for _ in $(seq 1 50); do listening "$wanted" && break; sleep 0.1; done
  listening "$wanted" || { echo "rotel does not listen on $wanted:"; cat "$log"; exit 1; }
done
export OTLP_ENDPOINT="http://127.0.0.1:$port"
export OTLP_HTTP_ENDPOINT="http://127.0.0.1:$http_port"
"$@"
