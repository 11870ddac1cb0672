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
# which under valgrind takes turns with the caller, keeps up.
#   bash peers/instruction_counts.sh --whole-process [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
whole=no
if [ "${1:-}" = "--whole-process" ]; then
  whole=yes
  shift
fi
iterations=${1:-200000}
cargo build --release -q -p telemark-peers --bin instruction_counts
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Every thread's instructions of one run.
program_total() {
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

if [ "$whole" = yes ]; then
  printf '%-24s %-22s %s\n' case instructions/call "spans exported / dropped"
  for case in baseline traced_sampled traced_not_sampled stacked; do
    FLUSH_EVERY=256 valgrind --tool=callgrind --callgrind-out-file="$out/$case" \
      target/release/instruction_counts "$case" "$iterations" >/dev/null 2>"$out/$case.err"
  done
  base=$(program_total "$out/baseline")
  for case in traced_sampled traced_not_sampled stacked; do
    total=$(program_total "$out/$case")
    spans=$(awk -v n="$iterations" '/^spans exported/ { print $3 " / " n - $3 }' "$out/$case.err")
    per_call=$(awk -v t="$total" -v b="$base" -v n="$iterations" 'BEGIN { printf "%.1f", (t - b) / n }')
    printf '%-24s %-22s %s\n' "$case" "$per_call" "$spans"
  done
  exit 0
fi

printf '%-24s %s\n' case instructions/call
for case in baseline counted counted_switched_off timed timed_switched_off \
            traced_sampled traced_not_sampled traced_switched_off \
            breaker breaker_switched_off windowed stacked stacked_switched_off \
            cached_metrics_counter metered_hit_count recloser_closed tracing_no_subscriber; do
  valgrind --tool=callgrind --callgrind-out-file="$out/$case" \
    target/release/instruction_counts "$case" "$iterations" >/dev/null 2>&1
  function=${case%%_*}
  callgrind_annotate --inclusive=yes "$out/$case" 2>/dev/null \
    | awk -v fn="instruction_counts::$function " -v n="$iterations" -v c="$case" '
        index($0, fn "[") { gsub(",", "", $1); printf "%-24s %.1f\n", c, $1 / n; exit }'
done
