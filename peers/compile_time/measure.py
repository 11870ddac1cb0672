#!/usr/bin/env python3
"""Compile time of annotated crates: telemark's attributes beside its peers.

Generates one library crate per variant, each with the same 300 small
functions (100 sync, 100 returning Result, 100 async), annotated with:
  bare        nothing
  telemark    #[telemark::counted] #[telemark::timed] #[telemark::traced]
  tracing     #[tracing::instrument]
  fastrace    #[fastrace::trace]
  autometrics #[autometrics::autometrics]
Dependencies are built first; then each variant's own crate is rebuilt
(its source touched) in alternating rounds, and the CPU time (user + system
of every process cargo starts) of each rebuild is recorded. Prints the
median of the rounds per variant and profile, and the expanded lines per
function (rustc -Zunpretty=expanded, the bare crate's lines subtracted).

    python3 peers/compile_time/measure.py [--rounds 3] [--functions 300] [--profile release|dev|both]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

VARIANTS = {
    "bare": ([], ""),
    "telemark": (
        [f'telemark = {{ path = "{ROOT}" }}'],
        "#[telemark::counted]\n#[telemark::timed]\n#[telemark::traced]\n",
    ),
    "tracing": (['tracing = "0.1.40"'], "#[tracing::instrument]\n"),
    "fastrace": (['fastrace = { version = "0.7", features = ["enable"] }'], "#[fastrace::trace]\n"),
    "autometrics": (['autometrics = "3"'], "#[autometrics::autometrics]\n"),
}


def source(attributes: str, functions: int) -> str:
    third = functions // 3
    out = ["#![allow(clippy::all, unused)]\n"]
    for i in range(third):
        out.append(f"{attributes}pub fn plain_{i}(x: u64) -> u64 {{\n    x.wrapping_mul({i + 3}) ^ (x >> 3)\n}}\n")
    for i in range(third):
        out.append(
            f"{attributes}pub fn fallible_{i}(x: u64) -> Result<u64, String> {{\n"
            f"    if x % {i + 2} == 0 {{ Err(format!(\"bad {{x}}\")) }} else {{ Ok(x + {i}) }}\n}}\n"
        )
    for i in range(functions - 2 * third):
        out.append(f"{attributes}pub async fn waiting_{i}(x: u64) -> u64 {{\n    x.rotate_left({i % 63 + 1})\n}}\n")
    return "\n".join(out)


def write_workspace(base: Path, functions: int) -> None:
    members = ", ".join(f'"{name}"' for name in VARIANTS)
    (base / "Cargo.toml").write_text(
        f'[workspace]\nmembers = [{members}]\nresolver = "2"\n\n'
        "[profile.release]\nincremental = false\n\n[profile.dev]\nincremental = false\n"
    )
    lock = ROOT / "Cargo.lock"
    if lock.exists():
        (base / "Cargo.lock").write_text(lock.read_text())
    for name, (deps, attributes) in VARIANTS.items():
        crate = base / name
        (crate / "src").mkdir(parents=True, exist_ok=True)
        dependencies = "\n".join(deps)
        (crate / "Cargo.toml").write_text(
            f'[package]\nname = "ct-{name}"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
            f"[dependencies]\n{dependencies}\n"
        )
        (crate / "src" / "lib.rs").write_text(source(attributes, functions))


def cargo(base: Path, *args: str, env=None) -> float:
    """Runs cargo; returns the CPU seconds of everything it started."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        ["cargo", *args], cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"cargo {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def touch(base: Path, name: str, round_number: int) -> None:
    lib = base / name / "src" / "lib.rs"
    text = lib.read_text().split("\n// round ")[0]
    lib.write_text(f"{text}\n// round {round_number}\n")


def expanded_lines(base: Path, name: str) -> int:
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    result = subprocess.run(
        ["cargo", "rustc", "--release", "-q", "-p", f"ct-{name}", "--", "-Zunpretty=expanded"],
        cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if result.returncode != 0:
        sys.exit(f"expanding {name} failed:\n{result.stderr[-4000:]}")
    return sum(1 for line in result.stdout.splitlines() if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--functions", type=int, default=300)
    parser.add_argument("--profile", choices=["release", "dev", "both"], default="both")
    parser.add_argument("--only", nargs="*", default=list(VARIANTS))
    parser.add_argument("--keep", help="build in this folder and keep it")
    args = parser.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="telemark-compile-time-"))
    base.mkdir(parents=True, exist_ok=True)
    write_workspace(base, args.functions)
    profiles = ["release", "dev"] if args.profile == "both" else [args.profile]
    names = [name for name in VARIANTS if name in args.only]
    for profile in profiles:
        flag = ["--release"] if profile == "release" else []
        for name in names:  # dependencies prebuilt, and one warm-up build
            cargo(base, "build", "-q", *flag, "-p", f"ct-{name}")
        times = {name: [] for name in names}
        for round_number in range(args.rounds):
            for name in names:  # alternating, so drift hits every variant alike
                touch(base, name, round_number)
                times[name].append(cargo(base, "build", "-q", *flag, "-p", f"ct-{name}"))
        bare = statistics.median(times["bare"]) if "bare" in times else None
        print(f"\n{profile}: CPU seconds to rebuild {args.functions} functions (median of {args.rounds})")
        reference = statistics.median(times["tracing"]) if "tracing" in times else None
        for name in names:
            median = statistics.median(times[name])
            ratio = f"  {median / reference:.2f}x tracing" if reference else ""
            rounds = ", ".join(f"{t:.2f}" for t in times[name])
            print(f"  {name:<12} {median:7.2f} s{ratio}   (rounds: {rounds})")
    if "bare" in names:
        bare_lines = expanded_lines(base, "bare")
        print(f"\nexpanded lines per function (rustc -Zunpretty=expanded, minus the bare crate's {bare_lines})")
        for name in names:
            if name == "bare":
                continue
            lines = expanded_lines(base, name)
            print(f"  {name:<12} {(lines - bare_lines) / args.functions:7.1f}")
    if not args.keep:
        print(f"\n(built in {base}; remove it when done)")


if __name__ == "__main__":
    main()
