#!/usr/bin/env python3
"""What a downstream crate using only `#[counted]` pays for telemark, per
feature set: the crates it depends on and a clean build (dev profile).

    python3 peers/compile_time/features.py [--rounds 1]
"""
import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SETS = {
    "minimal (default-features = false)": "default-features = false",
    "default without tls": 'default-features = false, features = ["server", "otlp", "metrics-recorder"]',
    "default (server, otlp, tls, metrics-recorder)": "",
}

SOURCE = """#[telemark::counted]
pub fn charge(cents: u64) -> Result<u64, String> {
    if cents == 0 { Err("nothing to charge".into()) } else { Ok(cents) }
}
"""


def run(args, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result.stdout, wall, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print("| feature set | crates (telemark's own included) | clean dev build, wall | CPU |")
    print("|---|---:|---:|---:|")
    for name, features in SETS.items():
        base = Path(tempfile.mkdtemp(prefix="telemark-features-"))
        extra = f", {features}" if features else ""
        (base / "src").mkdir()
        (base / "Cargo.toml").write_text(
            '[package]\nname = "downstream"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n'
            f'[dependencies]\ntelemark = {{ path = "{ROOT}"{extra} }}\n\n[workspace]\n'
        )
        (base / "src" / "lib.rs").write_text(SOURCE)
        shutil.copy(ROOT / "Cargo.lock", base / "Cargo.lock")
        run(["cargo", "fetch", "-q"], base)
        tree, _, _ = run(["cargo", "tree", "-e", "normal", "--prefix", "none"], base)
        crates = {line.replace(" (*)", "").strip() for line in tree.splitlines() if line.strip()}
        crates.discard(next(c for c in crates if c.startswith("downstream ")))
        walls, cpus = [], []
        for _ in range(args.rounds):
            shutil.rmtree(base / "target", ignore_errors=True)
            _, wall, cpu = run(["cargo", "build", "-q"], base)
            walls.append(wall)
            cpus.append(cpu)
        walls.sort()
        cpus.sort()
        print(f"| {name} | {len(crates)} | {walls[len(walls) // 2]:.1f} s | {cpus[len(cpus) // 2]:.1f} s |")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
