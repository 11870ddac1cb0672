#!/usr/bin/env bash
# System calls the calling thread makes per 1,000,000 sampled spans at a
# steady rate (the issue's target: at most 10): the instruction-count
# driver's `traced_sampled` case, paced by RATE (default 100,000 spans a
# second, a spin on the clock, which makes no system call), every span
# exported. Counted with `perf trace -s`, beside a run of 1,000 spans (its
# start-up and shutdown: the difference is the steady state, give or take
# start-up's own variation), with the spans exported.
#   bash peers/syscalls.sh [spans] [rate]
set -euo pipefail
cd "$(dirname "$0")/.."
spans=${1:-1000000}
rate=${2:-100000}
cargo build --release -q -p telemark-peers --bin instruction_counts
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The calling thread's system calls in one run (its summary is the first).
calls() {
  RATE=$rate perf trace -s -o "$out/trace" target/release/instruction_counts traced_sampled "$1" \
    2>"$out/err" >/dev/null
  awk '/^ instruction_cou/ { on = 1; next } on && /^ [a-z]/ { exit }
       on && $1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ { total += $2; if ($1 == "futex") futex += $2 }
       END { printf "%d %d\n", total, futex }' "$out/trace"
}

read -r base base_futex < <(calls 1000)
read -r total futex < <(calls "$spans")
exported=$(awk '/^spans exported/ { print $3 }' "$out/err")
echo "calling thread, 1000 spans: $base system calls ($base_futex futex)"
echo "calling thread, $spans spans at $rate/s: $total system calls ($futex futex); spans exported $exported of $spans"
