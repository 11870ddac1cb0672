#!/usr/bin/env bash
# OTLP export over TLS against real components: socat terminates TLS (a
# private CA's certificate) in front of rotel, which .ci/run started on
# 127.0.0.1:14317 (gRPC) and :14318 (HTTP), logging to $work/rotel.log.
# The propagation example exports its spans; each case checks that they
# arrive (or, for a wrong CA or a missing client certificate, that they are
# counted as dropped and the example does not hang).
#   bash .ci/tls_export.sh WORK_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
work=$1
tls="$work/tls"
mkdir -p "$tls"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# A private CA, the collector's certificate and a client's, signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=telemark test CA" \
  -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
sign() { # name subject extension
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$tls/$1.key" -out "$tls/$1.csr" 2>/dev/null
  openssl x509 -req -in "$tls/$1.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 2 -extfile <(printf '%s\n' "$3") -out "$tls/$1.pem" 2>/dev/null
}
sign server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1"
sign client "telemark client" "extendedKeyUsage=clientAuth"
# A CA that signed nothing here.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=someone else" \
  -keyout "$tls/other.key" -out "$tls/other.pem" 2>/dev/null

cert="cert=$tls/server.pem,key=$tls/server.key"
# -v: socat prints the decrypted HTTP traffic, so the test sees the headers.
socat -v "openssl-listen:14443,reuseaddr,fork,$cert,verify=0" tcp:127.0.0.1:14318 2>"$work/socat-http.log" &
pids+=($!)
# gRPC headers are HPACK-encoded, so socat's dump cannot show them: the TLS
# terminator forwards to a relay that decodes the HTTP/2 frames it passes on.
"$work/venv/bin/python" .ci/h2_observer.py 14419 14317 "$work/h2-grpc.log" &
pids+=($!)
socat "openssl-listen:14444,reuseaddr,fork,$cert,verify=0" tcp:127.0.0.1:14419 2>/dev/null &
pids+=($!)
socat "openssl-listen:14445,reuseaddr,fork,$cert,verify=1,cafile=$tls/ca.pem" tcp:127.0.0.1:14318 2>/dev/null &
pids+=($!)
sleep 0.5

# Runs the example with the given environment; prints its output.
export_with() {
  env "$@" OTEL_EXPORTER_OTLP_TIMEOUT=3000 timeout 60 target/debug/examples/propagation \
    >"$work/tls-run.log" 2>&1 || { cat "$work/tls-run.log"; return 1; }
  cat "$work/tls-run.log"
}

arrived() { # name
  local trace ok=no
  trace=$(awk '/frontend ran in trace/ {print $NF}' "$work/tls-run.log")
  for _ in $(seq 1 50); do
    if python3 .ci/check_rotel_spans.py "$work/rotel.log" "$trace" >"$work/check.log"; then ok=yes; break; fi
    sleep 0.2
  done
  cat "$work/check.log"
  [ "$ok" = yes ] || { echo "$1: the spans did not arrive"; tail -30 "$work/rotel.log"; exit 1; }
}

counted_as_dropped() { # name
  grep -q 'spans exported: 0, dropped: [1-9]' "$work/tls-run.log" ||
    { echo "$1: expected the spans to be counted as dropped"; exit 1; }
}

echo "--- OTLP/HTTP over TLS, gzip, a header from OTEL_EXPORTER_OTLP_HEADERS; spans and the metrics push"
export_with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14443 \
  OTEL_EXPORTER_OTLP_CERTIFICATE="$tls/ca.pem" OTEL_EXPORTER_OTLP_COMPRESSION=gzip \
  OTEL_EXPORTER_OTLP_HEADERS="x-telemark-check=over%20tls,x-second=2" OTEL_METRICS_EXPORTER=otlp
arrived "http over tls"
grep -qi '^x-telemark-check: over tls' "$work/socat-http.log" || { echo "the header did not arrive"; exit 1; }
grep -qi '^content-encoding: gzip' "$work/socat-http.log" || { echo "the body was not gzipped"; exit 1; }
echo "the header and gzip arrived"
# The metrics push (its last push at shutdown) went the same way: through
# the TLS terminator, to /v1/metrics, with the header, gzipped.
grep -q '^POST /v1/metrics ' "$work/socat-http.log" || { echo "no metrics pushed over TLS"; exit 1; }
awk '/^POST \/v1\/metrics / { on = 1 } on && /^(\\r)?$/ { exit } on' "$work/socat-http.log" >"$work/metrics-request.txt"
grep -qi '^x-telemark-check: over tls' "$work/metrics-request.txt" &&
  grep -qi '^content-encoding: gzip' "$work/metrics-request.txt" ||
  { cat "$work/metrics-request.txt"; echo "the metrics push lacked the header or gzip"; exit 1; }
echo "the metrics push arrived over TLS with the header and gzip"

echo "--- OTLP/gRPC over TLS, gzip, a header from OTEL_EXPORTER_OTLP_TRACES_HEADERS"
export_with OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14444 \
  OTEL_EXPORTER_OTLP_CERTIFICATE="$tls/ca.pem" OTEL_EXPORTER_OTLP_COMPRESSION=gzip \
  OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-telemark-check=grpc%20over%20tls" OTEL_METRICS_EXPORTER=otlp
arrived "grpc over tls"
grep -q ' x-telemark-check: grpc over tls$' "$work/h2-grpc.log" || { cat "$work/h2-grpc.log"; echo "the header did not arrive"; exit 1; }
grep -q ' grpc-encoding: gzip$' "$work/h2-grpc.log" || { cat "$work/h2-grpc.log"; echo "no grpc-encoding: gzip"; exit 1; }
grep -q ' grpc-compressed-flag: 1$' "$work/h2-grpc.log" || { cat "$work/h2-grpc.log"; echo "the message was not compressed"; exit 1; }
echo "the header and gzip arrived"
grep -q ' :path: /opentelemetry.proto.collector.metrics.v1.MetricsService/Export$' "$work/h2-grpc.log" ||
  { cat "$work/h2-grpc.log"; echo "no metrics pushed over gRPC with TLS"; exit 1; }
echo "the metrics push arrived over gRPC with TLS"

echo "--- mutual TLS: with the client certificate"
export_with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14445 \
  OTEL_EXPORTER_OTLP_CERTIFICATE="$tls/ca.pem" \
  OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE="$tls/client.pem" OTEL_EXPORTER_OTLP_CLIENT_KEY="$tls/client.key"
arrived "mutual tls"

echo "--- mutual TLS: without it, a counted failure"
export_with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14445 \
  OTEL_EXPORTER_OTLP_CERTIFICATE="$tls/ca.pem"
counted_as_dropped "no client certificate"

echo "--- a wrong CA: a counted failure, over HTTP and gRPC"
export_with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14443 \
  OTEL_EXPORTER_OTLP_CERTIFICATE="$tls/other.pem"
counted_as_dropped "wrong CA over http"
export_with OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14444 \
  OTEL_EXPORTER_OTLP_CERTIFICATE="$tls/other.pem"
counted_as_dropped "wrong CA over grpc"

echo "--- a bad value is an error from start() naming the variable"
if OTEL_EXPORTER_OTLP_COMPRESSION=brotli OTEL_EXPORTER_OTLP_ENDPOINT=https://127.0.0.1:14443 \
  target/debug/examples/propagation >"$work/tls-run.log" 2>&1; then
  echo "a bad compression was accepted"; exit 1
fi
grep -q 'OTEL_EXPORTER_OTLP_COMPRESSION' "$work/tls-run.log" && grep -q 'brotli' "$work/tls-run.log" ||
  { cat "$work/tls-run.log"; exit 1; }
echo "TLS export: ok"
