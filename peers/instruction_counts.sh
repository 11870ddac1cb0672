#!/usr/bin/env bash
# Instructions per call of each case, counted by valgrind's callgrind: the
# inclusive instructions of the instrumented function over its number of
# calls. Repeatable whatever else the machine is doing.
#   bash peers/instruction_counts.sh [iterations]
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-200000}
cargo build --release -q -p telemark-peers --bin instruction_counts
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
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
