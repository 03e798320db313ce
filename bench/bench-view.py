#!/usr/bin/env python3
"""bench/bench-view.py - what reading through a directory view costs against unzip.

A benchmark, not a test: it prints numbers and never fails on them.

Copies the bundled example suite into a temporary folder, puts a generated file
of BENCH_MB MiB (half text, half noise: it deflates but not to nothing) into
110.dynamic-html's templates (its init.sh copies them into the package), mounts
the copy with builder=none and a fresh cache and builds the package once.
Then, in BENCH_ROUNDS rounds, each on a fresh mount of the same cache (so the
kernel's page cache of the view is cold; the package is fresh and not rebuilt):
  - the big file read whole through the view (open, lookups, the index of the
    package, inflating that one entry) against `unzip -p` of the cached zip
    for that member;
  - `cp -r` of the whole view against `unzip -q -d` of the cached zip.
The medians and their ratios (view / unzip) are printed.

Prints a human-readable summary, then one machine-readable last line:
    file_ratio=<view/unzip> tree_ratio=<view/unzip> file_view_ms=... file_unzip_ms=...

Usage: bench/bench-view.py
Environment:
  SEBSFS_BUILD_DIR  build directory holding src/fs/sebsfs (default: build)
  BENCH_MB          size of the generated file in MiB (default: 32)
  BENCH_ROUNDS      rounds (default: 5)
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import REPO, positive, sebsfs_binary, wait_for

RUNTIME = "aws/python-3.11"
BENCH = "110.dynamic-html"
TEMPLATES = "benchmarks/100.webapps/110.dynamic-html/python/templates"
MEMBER = "function/templates/big.bin"


def big_content(size):
    chunk = bytearray()
    x = 0x2545F491
    while len(chunk) < 1 << 20:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        chunk += (b"row %016x of the generated file\n" % x) if x >> 63 else x.to_bytes(8, "little")
    chunk = bytes(chunk[:1 << 20])
    return b"".join(chunk[i % 7:] + chunk[:i % 7] for i in range(size >> 20))


class Mount:
    def __init__(self, binary, root, mnt, cache, log_path):
        with open(log_path, "a") as log:
            self.proc = subprocess.Popen([binary, "-f", "-o", f"cache={cache},builder=none",
                                          root, mnt], stdout=log, stderr=subprocess.STDOUT)
        self.mnt = mnt
        wait_for(lambda: os.path.ismount(mnt) or self.proc.poll() is not None, 10,
                 "not mounted")
        if self.proc.poll() is not None:
            sys.exit("bench: sebsfs exited before mounting")

    def stop(self):
        subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()


def timed_ms(fn):
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def read_whole(path):
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 17):
            pass


def run(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def main():
    binary = sebsfs_binary()
    if not shutil.which("unzip"):
        sys.exit("bench: unzip not found")
    size_mb = positive("BENCH_MB", 32)
    rounds = positive("BENCH_ROUNDS", 5)

    tmp = tempfile.mkdtemp(prefix="sebsfs-bench-view.")
    root, mnt, cache = (os.path.join(tmp, d) for d in ("suite", "mnt", "cache"))
    log_path = os.path.join(tmp, "sebsfs.log")
    m = None
    results = {"file_view": [], "file_unzip": [], "tree_view": [], "tree_unzip": []}
    rebuilds = 0
    try:
        shutil.copytree(os.path.join(REPO, "examples", "suite"), root, symlinks=True)
        with open(os.path.join(root, TEMPLATES, "big.bin"), "wb") as f:
            f.write(big_content(size_mb << 20))
        os.mkdir(mnt)
        m = Mount(binary, root, mnt, cache, log_path)
        package = os.path.join(mnt, RUNTIME, BENCH + ".zip")
        read_whole(package)
        sha = os.getxattr(package, "user.sebs.sha256").decode()
        plain = os.path.join(cache, "packages", sha + ".zip")
        zipped = os.path.getsize(plain)
        m.stop()
        m = None
        for i in range(rounds):
            m = Mount(binary, root, mnt, cache, log_path)
            view = os.path.join(mnt, RUNTIME, BENCH)
            results["file_view"].append(timed_ms(lambda: read_whole(os.path.join(view, MEMBER))))
            results["file_unzip"].append(timed_ms(lambda: run(["unzip", "-p", plain, MEMBER])))
            m.stop()
            m = Mount(binary, root, mnt, cache, log_path)
            dest_view, dest_unzip = (os.path.join(tmp, f"{k}-{i}") for k in ("view", "unzip"))
            results["tree_view"].append(timed_ms(lambda: run(["cp", "-r", view, dest_view])))
            results["tree_unzip"].append(
                timed_ms(lambda: run(["unzip", "-q", plain, "-d", dest_unzip])))
            # later mounts find the package fresh: nothing is rebuilt
            rebuilds += int(os.getxattr(package, "user.sebs.builds"))
            m.stop()
            m = None
            shutil.rmtree(dest_view)
            shutil.rmtree(dest_unzip)
    finally:
        if m is not None:
            m.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    file_ratio = med["file_view"] / med["file_unzip"]
    tree_ratio = med["tree_view"] / med["tree_unzip"]
    print(f"sebsfs bench-view: {os.uname().sysname} {os.uname().release}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    print(f"package {RUNTIME}/{BENCH}.zip ({zipped / 2**20:.1f} MiB zipped) with a generated "
          f"{size_mb} MiB {MEMBER}; builder=none; rebuilds during the rounds: {rebuilds}")
    print(f"medians of {rounds} rounds, each on a fresh mount (cold page cache):")
    print(f"  {MEMBER} through the view: {med['file_view']:9.1f} ms")
    print(f"  unzip -p of the cached zip:  {med['file_unzip']:9.1f} ms   ratio {file_ratio:.2f}")
    print(f"  cp -r of the view:           {med['tree_view']:9.1f} ms")
    print(f"  unzip -d of the cached zip:  {med['tree_unzip']:9.1f} ms   ratio {tree_ratio:.2f}")
    print(f"file_ratio={file_ratio:.2f} tree_ratio={tree_ratio:.2f} "
          f"file_view_ms={med['file_view']:.1f} file_unzip_ms={med['file_unzip']:.1f} "
          f"tree_view_ms={med['tree_view']:.1f} tree_unzip_ms={med['tree_unzip']:.1f}")


if __name__ == "__main__":
    main()
