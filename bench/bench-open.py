#!/usr/bin/env python3
"""bench/bench-open.py - what a cache-hit open costs on a benchmark with many inputs.

A benchmark, not a test: it prints numbers and never fails on them.

Copies the bundled example suite into a temporary folder, gives one benchmark
(300.utilities/311.compression, python) BENCH_FILES extra input files spread
over folders of 100, mounts the copy with builder=none and a fresh cache,
builds the package once, then times BENCH_OPENS rounds of open + read 4 KiB +
close of the package through the mount (each open runs the freshness check)
and of the cached package file read directly (the plain file), interleaved in
rounds so that both see the same machine state.  The medians are compared.

Prints a human-readable summary, then one machine-readable last line:
    open_added_us=<mount - plain> plain_us=<median> mount_us=<median>

Usage: bench/bench-open.py
Environment:
  SEBSFS_BUILD_DIR  build directory holding src/fs/sebsfs (default: build)
  BENCH_FILES       extra input files (default: 5000)
  BENCH_OPENS       timed opens of each kind (default: 2000)
  BENCH_OPTS        extra -o options for sebsfs, e.g. "input_watch=off"
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import REPO, positive, sebsfs_binary, wait_for

PACKAGE = "aws/python-3.11/311.compression.zip"
BENCHMARK = "benchmarks/300.utilities/311.compression/python"


def open_read_close(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.read(fd, 4096)
    finally:
        os.close(fd)


def median_us(path, n):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        open_read_close(path)
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000.0


def main():
    binary = sebsfs_binary()
    n_files = positive("BENCH_FILES", 5000)
    n_opens = positive("BENCH_OPENS", 2000)
    extra = os.environ.get("BENCH_OPTS", "")

    tmp = tempfile.mkdtemp(prefix="sebsfs-bench-open.")
    root, mnt, cache = (os.path.join(tmp, d) for d in ("suite", "mnt", "cache"))
    log_path = os.path.join(tmp, "sebsfs.log")
    proc = None
    try:
        shutil.copytree(os.path.join(REPO, "examples", "suite"), root, symlinks=True)
        data = os.path.join(root, BENCHMARK, "data")
        for i in range(n_files):
            folder = os.path.join(data, f"d{i // 100:04d}")
            if i % 100 == 0:
                os.makedirs(folder)
            with open(os.path.join(folder, f"f{i:06d}.txt"), "w") as f:
                f.write(f"input {i}\n")
        os.mkdir(mnt)
        opts = f"cache={cache},builder=none" + (f",{extra}" if extra else "")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([binary, "-f", "-o", opts, root, mnt], stdout=log,
                                    stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.ismount(mnt) or proc.poll() is not None, 10, "not mounted")
        if proc.poll() is not None:
            sys.exit("bench: sebsfs exited before mounting")
        package = os.path.join(mnt, PACKAGE)
        t0 = time.monotonic()
        with open(package, "rb") as f:
            f.read()
        build_s = time.monotonic() - t0
        sha = os.getxattr(package, "user.sebs.sha256").decode()
        plain = os.path.join(cache, "packages", sha + ".zip")
        for _ in range(50):  # warm both paths (verification, page cache)
            open_read_close(package)
            open_read_close(plain)
        rounds = 10
        mount_us, plain_us = [], []
        for _ in range(rounds):
            mount_us.append(median_us(package, max(1, n_opens // rounds)))
            plain_us.append(median_us(plain, max(1, n_opens // rounds)))
        mount, direct = statistics.median(mount_us), statistics.median(plain_us)
        builds = os.getxattr(package, "user.sebs.builds").decode()
    finally:
        if proc is not None:
            subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"sebsfs bench-open: {os.uname().sysname} {os.uname().release}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    print(f"package {PACKAGE} with {n_files} extra input files; options {opts}")
    print(f"first build (open + read): {build_s:.2f} s; builds: {builds}")
    print(f"open + read 4 KiB + close, median of {rounds} rounds of {n_opens // rounds}:")
    print(f"  through the mount: {mount:10.1f} us")
    print(f"  plain file:        {direct:10.1f} us")
    print(f"  added per open:    {mount - direct:10.1f} us")
    print(f"open_added_us={mount - direct:.1f} plain_us={direct:.1f} mount_us={mount:.1f}")


if __name__ == "__main__":
    main()
