#!/usr/bin/env python3
"""bench/bench-remote.py - the second machine of a shared remote cache:
serving a package another machine built and pushed, against building it.

A benchmark, not a test: it prints numbers and never fails on them.

Starts a docker-registry of its own on a loopback port (/usr/bin/docker-registry,
no dockerd), copies the bundled example suite into a temporary folder, and
mounts it with -o remote_cache=<registry>/bench/sebsfs on a first cache folder
("machine one"), which builds BENCH_PACKAGES and pushes them in the
background.  Then, in BENCH_ROUNDS rounds, each on fresh cache folders:
  - "fetch": a mount with the same remote_cache, remote_cache_mode=read
    ("machine two"), opens and reads each package (look-up, download, digest and zip checks, publish);
  - "build": a mount without remote_cache builds and reads each package.
The medians per package and their ratio (fetch / build) are printed.

With BENCH_EDIT=1, the suite's function.py / function.js are edited (a
comment appended) after machine one pushed: every package key then misses,
but the dependency layers' keys do not, so "fetch" measures a build whose
pip/npm install is fetched (a dependency layer pushed by machine one) and
"build" one that installs; both must give the same bytes.

Prints a human-readable summary, then one machine-readable last line:
    ratio=<fetch/build> fetch_ms=... build_ms=...   (sums over the packages)

Usage: bench/bench-remote.py          (as root: FUSE mounts)
Environment:
  SEBSFS_BUILD_DIR  build directory holding src/fs/sebsfs (default: build)
  BENCH_BUILDER     sebsfs builder= (default: host; docker needs a daemon and
                    the build images)
  BENCH_PACKAGES    comma-separated paths in the mount (default:
                    aws/python-3.11/110.dynamic-html.zip,aws/nodejs-20/110.dynamic-html.zip)
  BENCH_ROUNDS      rounds (default: 5)
  BENCH_EDIT        1: edit the code after machine one pushed (see above)
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from benchlib import REPO, positive, sebsfs_binary, wait_for

REPOSITORY = "bench/sebsfs"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_status(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Registry:
    def __init__(self, base):
        self.addr = f"127.0.0.1:{free_port()}"
        config = os.path.join(base, "registry.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {os.path.join(base, 'data')}\n"
                    f"http:\n  addr: {self.addr}\n")
        self.log = open(os.path.join(base, "registry.log"), "a")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: http_status(f"http://{self.addr}/v2/") == 200, 30,
                 "docker-registry did not answer")

    def has(self, tag):
        return http_status(f"http://{self.addr}/v2/{REPOSITORY}/manifests/{tag}",
                           "application/vnd.oci.image.manifest.v1+json") == 200

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


class Mount:
    def __init__(self, binary, root, mnt, cache, options, log_path):
        os.makedirs(mnt, exist_ok=True)
        with open(log_path, "a") as log:
            self.proc = subprocess.Popen(
                [binary, "-f", "-o", ",".join([f"cache={cache}"] + options), root, mnt],
                stdout=log, stderr=subprocess.STDOUT)
        self.mnt = mnt
        wait_for(lambda: os.path.ismount(mnt) or self.proc.poll() is not None, 10,
                 "not mounted")
        if self.proc.poll() is not None:
            sys.exit(f"bench: sebsfs exited before mounting (see {log_path})")

    def read(self, rel):
        with open(os.path.join(self.mnt, rel), "rb") as f:
            return f.read()

    def stop(self):
        subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait()


def edit_code(root):
    """Appends a comment to every benchmark's function.py / function.js."""
    for dirpath, _, files in os.walk(os.path.join(root, "benchmarks")):
        for name, comment in (("function.py", "# edited\n"), ("function.js", "// edited\n")):
            if name in files:
                with open(os.path.join(dirpath, name), "a") as f:
                    f.write(comment)


def timed_read_ms(mount, rel):
    t0 = time.perf_counter_ns()
    data = mount.read(rel)
    return (time.perf_counter_ns() - t0) / 1e6, data


def main():
    binary = sebsfs_binary()
    rounds = positive("BENCH_ROUNDS", 5)
    edit = os.environ.get("BENCH_EDIT", "") == "1"
    builder = os.environ.get("BENCH_BUILDER", "host")
    packages = os.environ.get("BENCH_PACKAGES", "aws/python-3.11/110.dynamic-html.zip,"
                              "aws/nodejs-20/110.dynamic-html.zip").split(",")
    work = tempfile.mkdtemp(prefix="sebsfs-bench-remote.")
    registry = None
    try:
        root = os.path.join(work, "suite")
        shutil.copytree(os.path.join(REPO, "examples", "suite"), root, symlinks=True)
        registry = Registry(work)
        remote = [f"builder={builder}", f"remote_cache={registry.addr}/{REPOSITORY}"]
        log = os.path.join(work, "sebsfs.log")

        one = Mount(binary, root, os.path.join(work, "mnt-one"), os.path.join(work, "cache-one"),
                    remote, log)
        reference = {}
        for rel in packages:
            reference[rel] = one.read(rel)
            key = os.getxattr(os.path.join(one.mnt, rel), "user.sebs.input_hash").decode()
            wait_for(lambda: registry.has(key), 120, f"{rel} was not pushed")
        one.stop()
        print(f"machine one built and pushed {len(packages)} package(s) to {registry.addr}",
              file=sys.stderr)
        if edit:
            edit_code(root)

        fetch = {rel: [] for rel in packages}
        build = {rel: [] for rel in packages}
        for n in range(rounds):
            # read: what a round builds is never pushed for the next one
            for kind, options, times in (("fetch", remote + ["remote_cache_mode=read"], fetch),
                                         ("build", [f"builder={builder}"], build)):
                m = Mount(binary, root, os.path.join(work, f"mnt-{kind}-{n}"),
                          os.path.join(work, f"cache-{kind}-{n}"), options, log)
                for rel in packages:
                    ms, data = timed_read_ms(m, rel)
                    if edit and kind == "fetch":
                        reference[rel] = data  # the edited package: "build" must agree
                    if data != reference[rel]:
                        sys.exit(f"bench: {kind} of {rel} gave other bytes than"
                                 f" {'the fetch' if edit else 'machine one'}")
                    origin = os.getxattr(os.path.join(m.mnt, rel), "user.sebs.origin").decode()
                    if origin != ("remote" if kind == "fetch" and not edit else "local"):
                        sys.exit(f"bench: {kind} of {rel}: user.sebs.origin is {origin}")
                    times[rel].append(ms)
                m.stop()
            print(f"round {n + 1}/{rounds} done", file=sys.stderr)

        edited = ", code edited: fetch = dependency layers fetched" if edit else ""
        print(f"builder={builder}, {rounds} rounds, medians (open + read of the whole package"
              f" on a fresh cache folder{edited}):")
        total_fetch = total_build = 0.0
        for rel in packages:
            f, b = statistics.median(fetch[rel]), statistics.median(build[rel])
            total_fetch += f
            total_build += b
            print(f"  {rel}: {len(reference[rel])} bytes; fetch {f:.1f} ms, build {b:.1f} ms,"
                  f" ratio {f / b:.3f}")
        print(f"ratio={total_fetch / total_build:.3f} fetch_ms={total_fetch:.1f}"
              f" build_ms={total_build:.1f}")
    finally:
        if registry:
            registry.stop()
        for entry in os.listdir(work):
            if entry.startswith("mnt-"):
                subprocess.run(["fusermount3", "-u", "-z", os.path.join(work, entry)],
                               stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
