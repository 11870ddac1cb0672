#!/usr/bin/env bash
# Instructions per call of each case, counted by valgrind's callgrind: the
# inclusive instructions of the instrumented function over its number of
# calls. Repeatable whatever else the machine is doing.
#   bash peers/instruction_counts.sh [iterations]
# With --whole-process, the span cases are counted over the whole process
# instead: every thread's instructions (the export thread's conversion and
# freeing included) less the baseline's, over the number of calls, with the
# spans the export thread exported and dropped. The driver flushes every 256
# calls (in every case, the baseline's included) so that the export thread,
# which under valgrind takes turns with the caller, keeps up. The async
# cases are awaited in a tokio runtime and counted inside the loop.
#   bash peers/instruction_counts.sh --whole-process [iterations]
# traced_child_sampled and fastrace_sampled make each call a child of a
# root span per 256 calls (fastrace records spans only under a root).
# With --whole-process --otlp, the spans are exported over OTLP/gRPC to a
# collector (rotel, exporting to a blackhole, started by
# peers/with_rotel.sh) instead of a counting exporter, and the OpenTelemetry
# SDK's in_span with its batch processor and opentelemetry-otlp is counted
# beside them (sdk_sampled). The collector's own work is not counted.
#   bash peers/instruction_counts.sh --whole-process --otlp [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
whole=no
otlp=no
if [ "${1:-}" = "--whole-process" ]; then
  whole=yes
  shift
  if [ "${1:-}" = "--otlp" ]; then
    otlp=yes
    shift
    if [ -z "${OTLP_ENDPOINT:-}" ]; then
      exec bash peers/with_rotel.sh bash peers/instruction_counts.sh --whole-process --otlp "$@"
    fi
  fi
fi
iterations=${1:-200000}
cargo build --release -q -p telemark-peers --bin instruction_counts
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Every thread's instructions of one run, less the clocks' calibration at
# start-up: quanta's, and fastant's (fastrace's clock, calibrated in a
# constructor before main by a loop whose length varies between runs, by
# up to 10 million instructions), which are not per-call costs.
program_total() {
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null | awk '
    /PROGRAM TOTALS/ && !total { gsub(",", "", $1); total = $1 }
    /fastant::tsc_now::___init___ctor::___init___ctor \[/ && !fastant { gsub(",", "", $1); fastant = $1 }
    /quanta::Clock::new \[/ && !quanta { gsub(",", "", $1); quanta = $1 }
    END { print total - fastant - quanta }'
}

span_cases="baseline traced_sampled traced_not_sampled stacked traced_child_sampled"
if [ "$otlp" = yes ]; then
  span_cases="$span_cases sdk_sampled"
else
  # Spans go to a counting exporter in the process; fastrace's children of
  # a root per 256 calls to a counting reporter, beside telemark's
  # (traced_child_sampled).
  span_cases="$span_cases fastrace_sampled"
  unset OTLP_ENDPOINT
fi

if [ "$whole" = yes ]; then
  printf '%-26s %-18s %s\n' case instructions/call "spans exported / dropped"
  # Spans: every thread's instructions less the baseline's.
  base=""
  for case in $span_cases; do
    FLUSH_EVERY=256 valgrind --tool=callgrind --callgrind-out-file="$out/$case" \
      target/release/instruction_counts "$case" "$iterations" >/dev/null 2>"$out/$case.err"
    total=$(program_total "$out/$case")
    if [ -z "$base" ]; then base=$total; continue; fi
    spans=$(awk -v n="$iterations" '/^spans exported/ { print $3 " / " n - $3 }' "$out/$case.err")
    printf '%-26s %-18s %s\n' "$case" "$(awk -v t="$total" -v b="$base" -v n="$iterations" \
      'BEGIN { printf "%.1f", (t - b) / n }')" "$spans"
  done
  # Async calls awaited in a tokio runtime: counted inside the driver's
  # loop only (start-up left out, so the figure is exact), less the same
  # loop over an uninstrumented async fn.
  base=""
  for case in baseline_async breaker_async breaker_timeout_async traced_async_not_sampled; do
    valgrind --tool=callgrind --toggle-collect='instruction_counts::awaited*' \
      --callgrind-out-file="$out/$case" \
      target/release/instruction_counts "$case" "$iterations" >/dev/null 2>&1
    total=$(program_total "$out/$case")
    if [ -z "$base" ]; then base=$total; continue; fi
    printf '%-26s %-18s\n' "$case" "$(awk -v t="$total" -v b="$base" -v n="$iterations" \
      'BEGIN { printf "%.1f", (t - b) / n }')"
  done
  exit 0
fi

printf '%-24s %s\n' case instructions/call
for case in baseline counted counted_switched_off timed timed_switched_off \
            traced_sampled traced_not_sampled traced_switched_off \
            breaker breaker_switched_off windowed stacked stacked_switched_off \
            cached_metrics_counter metered_hit_count recloser_closed tracing_no_subscriber; do
  # Spans flushed every 256 calls (outside the measured function), so that
  # under valgrind, which runs one thread at a time, every span goes the
  # way it goes in a service (into the thread's lane) rather than the
  # full-queue path.
  FLUSH_EVERY=256 valgrind --tool=callgrind --callgrind-out-file="$out/$case" \
    target/release/instruction_counts "$case" "$iterations" >/dev/null 2>&1
  function=${case%%_*}
  callgrind_annotate --inclusive=yes "$out/$case" 2>/dev/null \
    | awk -v fn="instruction_counts::$function " -v n="$iterations" -v c="$case" '
        index($0, fn "[") && !found { gsub(",", "", $1); printf "%-24s %.1f\n", c, $1 / n; found = 1 }'
done
