"""Fixtures of the sebsfs integration tests: a private copy of the example
suite and real FUSE mounts of it.

Environment (set by meson): SEBSFS_BIN (the binary), SEBSFS_SOURCE_ROOT (repo).
Every test gets its own suite copy, mount point and cache directory.  Nothing
is skipped: without a working FUSE setup, the tests fail.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sebsfs_testlib import (SUITE_SOURCE, mounted, offline_env, remove_images,  # noqa: E402
                            sebsfs_bin)

MOUNT_DEADLINE = 10.0
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error")


class Mount:
    """One running `sebsfs -f` process and its mount point."""

    def __init__(self, tmp_path, root, cache, options, name):
        self.root = Path(root) if root is not None else None
        self.cache = Path(cache)
        self.options = list(options)
        self.mnt = tmp_path / f"mnt-{name}"
        self.mnt.mkdir()
        self.stderr_path = tmp_path / f"sebsfs-{name}.stderr"
        self.env = offline_env(tmp_path)
        self.problems = []
        self.proc = None
        self.signalled = None

    @property
    def argv(self):
        opts = ",".join([f"cache={self.cache}"] + self.options)
        argv = [sebsfs_bin(), "-f", "-o", opts]
        if self.root is not None:
            argv.append(str(self.root))
        argv.append(str(self.mnt))
        return argv

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=self.env)
        deadline = time.monotonic() + MOUNT_DEADLINE
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                pytest.fail(f"sebsfs exited with status {self.proc.returncode} before mounting:\n"
                            f"argv: {self.argv}\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"sebsfs did not mount {self.mnt} within {MOUNT_DEADLINE} s:\n"
                            f"{self.stderr()}")
            time.sleep(0.02)
        return self

    def signal(self, sig):
        """Sends sig to sebsfs on purpose (a test of what survives a kill):
        dying from it is then no crash."""
        self.signalled = sig
        self.proc.send_signal(sig)

    def stop(self):
        """Unmounts and ends the process; returns the problems seen so far
        (sanitizer reports, a process that would not exit or that died from a
        signal before this stopped it, i.e. crashed)."""
        problems = self.problems
        if self.proc is None:
            return problems
        if mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mnt)],
                           capture_output=True, timeout=30)
        try:
            rc = self.proc.wait(timeout=5)
            if rc < 0 and -rc != self.signalled:
                try:
                    name = signal.Signals(-rc).name
                except ValueError:
                    name = f"signal {-rc}"
                problems.append(f"sebsfs died from {name} (nothing here signalled it):\n"
                                f"argv: {self.argv}\n{self.stderr()[-4000:]}")
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("sebsfs did not exit on SIGTERM after unmount (killed)")
        self.proc = None
        text = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append(f"sebsfs stderr contains {marker!r}:\n{text}")
                break
        return problems

    # paths inside the mount
    def path(self, *parts):
        return self.mnt.joinpath(*parts)

    def zip(self, platform, runtime, benchmark):
        return self.mnt / platform / runtime / f"{benchmark}.zip"

    def log(self, platform, runtime, benchmark):
        return self.mnt / platform / runtime / f"{benchmark}.zip.log"


@pytest.fixture
def registry():
    """The loopback registry scripts/test started (SEBSFS_REGISTRY), checked to
    answer; its address."""
    addr = os.environ.get("SEBSFS_REGISTRY")
    assert addr, "SEBSFS_REGISTRY is not set (scripts/test starts a loopback registry)"
    r = subprocess.run(["curl", "-fsS", f"http://{addr}/v2/"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, f"no registry answers at {addr}: {r.stderr}"
    return addr


@pytest.fixture
def repo():
    """A fresh repository name for function images under sebsfs-test/; its
    images are removed from the daemon at the end."""
    name = f"sebsfs-test/img{uuid.uuid4().hex[:10]}"
    yield name
    remove_images(name)


@pytest.fixture
def suite(tmp_path):
    """A private, editable copy of examples/suite."""
    dst = tmp_path / "suite"
    shutil.copytree(SUITE_SOURCE, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    return dst


@pytest.fixture
def sebsfs(tmp_path, suite):
    """Factory: sebsfs(root=suite, cache=<tmp>/cache, options=("builder=host",),
    env={...}) starts a mount (env: variables added to its environment) and returns a Mount; root=None serves the bundled suite.
    All mounts are stopped at teardown; sanitizer reports fail the test."""
    mounts = []
    counter = [0]

    def start(root=suite, cache=None, options=("builder=host",), use_root=True, env=None):
        counter[0] += 1
        cache = cache or tmp_path / "cache"
        m = Mount(tmp_path, root if use_root else None, cache, options, counter[0])
        m.env.update(env or {})
        mounts.append(m)
        return m.start()

    start.mounts = mounts
    yield start
    problems = []
    for m in reversed(mounts):
        problems += m.stop()
    problems = list(dict.fromkeys(problems))
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def mount(sebsfs):
    """The example suite (private copy) mounted with builder=host."""
    return sebsfs()
