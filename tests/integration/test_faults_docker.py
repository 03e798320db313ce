"""Faults of the Docker daemon and of the registry through real mounts
(issue 8): dockerd killed while sebsfs pulls a build image and while a build
container runs, and the registry killed while a function image is pushed.

The shared daemon (/var/run/docker.sock) is never touched: every test talks
to a private dockerd started here (its own data root, exec root, pid file,
socket and bridge; never `--bridge none`, which deletes docker0, the shared
daemon's bridge), which pulls the SeBS-style images from the loopback
registry (scripts/services, SEBSFS_REGISTRY), and to a private
docker-registry on a port of its own.

What must hold: the open fails with EIO within a bound (no hang), the log
says the daemon or the registry was lost, the mount answers listing and stat
while the build fails, the previous good package stays, and once the daemon
or registry is back the next open builds (pulls, pushes)."""

import errno
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import Mount
from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, PrivateRegistry, alive, builds, cmdline,
                            edit_json, end_process, free_port, function_tag, names, read, run,
                            sha256, state, wait_for, xattr)

PLATFORM, RUNTIME = "aws", "python-3.11"
SP = ".python_packages/lib/site-packages/"
REPO = "sebsfs-faults"            # repositories in the loopback registry
BUILD_TAG = "build.aws.python.3.11-1.2.1"
BASE_TAG = "aws-python-3.11"
OPEN_BOUND = 150                  # seconds an open may take to fail (docker retries a push ~55 s)


def docker(*args, host=None, check=True, timeout=600):
    env = dict(os.environ)
    if host:
        env["DOCKER_HOST"] = host
    r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


def pids_of_children(pid):
    try:
        out = []
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(p) for p in f.read().split()]
        return out
    except OSError:
        return []


class PrivateDockerd:
    """A dockerd of our own.  kill() is a crash (SIGKILL); start() again
    reuses its data root, like a daemon restarted by its init."""

    def __init__(self, base):
        self.base = Path(base)
        self.sock = self.base / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.bridge = f"sbsflt{os.getpid() % 100000}"
        self.proc = None
        self.helpers = set()     # containerd and shims this daemon started
        self.log = self.base / "dockerd.log"

    def make_bridge(self):
        r = run(["ip", "link", "add", self.bridge, "type", "bridge"])
        assert r.returncode == 0, r.stderr
        subnet = 200 + os.getpid() % 50
        run(["ip", "addr", "add", f"10.213.{subnet}.1/24", "dev", self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])

    def start(self):
        # A killed containerd stays a zombie here (no init reaps it), and
        # dockerd takes a pid file naming a zombie for a live containerd.
        stale = self.base / "exec" / "containerd" / "containerd.pid"
        try:
            if not alive(int(stale.read_text())):
                stale.unlink()
        except (OSError, ValueError):
            pass
        argv = ["dockerd", "--data-root", str(self.base / "data"),
                "--exec-root", str(self.base / "exec"), "--pidfile", str(self.base / "dockerd.pid"),
                "-H", self.host, "--bridge", self.bridge, "--iptables=false", "--ip-masq=false",
                "--ip-forward=false"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        ok = wait_for(lambda: self.proc.poll() is None and self.answers(), 120, 0.5)
        assert ok, f"private dockerd did not start:\n{self.log.read_text()[-3000:]}"
        self.note_helpers()

    def answers(self):
        try:
            return docker("version", host=self.host, check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def note_helpers(self):
        """Remembers containerd and its shims, which outlive a killed dockerd."""
        todo = [self.proc.pid] + sorted(self.helpers)
        while todo:
            pid = todo.pop()
            for child in pids_of_children(pid):
                if child not in self.helpers and "containerd" in cmdline(child):
                    self.helpers.add(child)
                    todo.append(child)

    def kill(self):
        """The daemon dies at once: dockerd and the containerd it runs (as an
        init kills a crashed service's processes; a containerd left behind
        holds its database lock and the restarted daemon cannot start its
        own).  Container shims live on, as they are meant to."""
        self.note_helpers()
        self.proc.send_signal(signal.SIGKILL)
        for pid in self.helpers:
            if "shim" not in cmdline(pid) and str(self.base) in cmdline(pid) and alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self):
        """The daemon is stopped as an init stops it (SIGTERM, waiting)."""
        self.note_helpers()
        end_process(self.proc.pid, timeout=60)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.note_helpers()
            end_process(self.proc.pid)
            self.proc.wait(timeout=30)
        # shims first (their containers die with them), then containerd
        for pid in sorted(self.helpers, key=lambda p: "shim" not in cmdline(p)):
            if str(self.base) in cmdline(pid) or "shim" in cmdline(pid):
                end_process(pid)

    def cleanup(self):
        self.stop()
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for mnt in sorted((m for m in mounts if m.startswith(str(self.base) + "/")),
                          key=len, reverse=True):
            run(["umount", "-l", mnt])
        run(["ip", "link", "del", self.bridge])


@pytest.fixture(scope="module")
def loopback():
    """The shared loopback registry, holding this module's build and base
    images (pushed from the shared daemon; their layers are already there)."""
    addr = os.environ.get("SEBSFS_REGISTRY")
    assert addr, "SEBSFS_REGISTRY is not set (scripts/test starts a loopback registry)"
    for src, dst in ((f"sebsfs/example-benchmarks:{BUILD_TAG}", f"{addr}/{REPO}/bench:{BUILD_TAG}"),
                     ("amazon/aws-lambda-python:3.11", f"{addr}/{REPO}/base:{BASE_TAG}")):
        assert docker("image", "inspect", src, check=False).returncode == 0, \
            f"{src} missing (run scripts/prepare-images)"
        docker("tag", src, dst)
        docker("push", dst)
        docker("rmi", dst, check=False)
    return addr


@pytest.fixture(scope="module")
def dockerd():
    base = Path(tempfile.mkdtemp(prefix="sebsfs-dd-", dir="/tmp"))  # short: socket path
    d = PrivateDockerd(base)
    d.make_bridge()
    try:
        d.start()
        yield d
    finally:
        d.cleanup()
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)])


@pytest.fixture
def daemon(dockerd):
    """The private daemon, running (a test that killed it left it down)."""
    if dockerd.proc.poll() is not None:
        dockerd.start()
    return dockerd


@pytest.fixture
def fault_suite(suite, loopback):
    """The suite copy, taking its build and base images from the loopback
    registry, so the private daemon pulls them for real."""
    def point(d):
        d["general"]["docker_repository"] = f"{loopback}/{REPO}/bench"
        d["aws"]["languages"]["python"]["base_images"]["x64"]["3.11"] = \
            f"{loopback}/{REPO}/base:{BASE_TAG}"
    edit_json(suite / "configs" / "systems.json", point)
    return suite


def private_mount(sebsfs, tmp_path, suite, daemon, options, name):
    m = Mount(tmp_path, suite, tmp_path / f"cache-{name}", options, name)
    m.env["DOCKER_HOST"] = daemon.host
    sebsfs.mounts.append(m)
    return m.start()


def answers(m, target):
    """Listing, stat and xattrs answer now (within a few seconds)."""
    def go():
        assert target.name in os.listdir(target.parent)
        os.stat(target)
        state(target)
    t = threading.Thread(target=go, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(10)
    assert not t.is_alive(), "the mount stopped answering ls/stat"
    return time.monotonic() - t0


class OpenInBackground:
    """An open+read of path in a thread; result() is the data or the errno."""

    def __init__(self, path):
        self.box = {}
        self.thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self.thread.start()

    def _run(self, path):
        try:
            with open(path, "rb") as f:
                self.box["data"] = f.read()
        except OSError as e:
            self.box["errno"] = e.errno

    def result(self, timeout=OPEN_BOUND):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the open did not end within {timeout} s"
        return self.box.get("data"), self.box.get("errno")


def log_of(path):
    return read(path.with_name(path.name + ".log")).decode(errors="replace")


def package_sh(suite):
    return suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "package.sh"


# ------------------------------------------------------------------ dockerd

def test_dockerd_killed_while_pulling_the_build_image(sebsfs, tmp_path, fault_suite, daemon):
    m = private_mount(sebsfs, tmp_path, fault_suite, daemon, ("builder=docker",), "pull")
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    docker("rmi", "-f", f"{os.environ['SEBSFS_REGISTRY']}/{REPO}/bench:{BUILD_TAG}",
           host=daemon.host, check=False)
    opener = OpenInBackground(z)
    assert wait_for(lambda: "Pulling" in log_of(z) or "Downloading" in log_of(z), 60, 0.1), \
        log_of(z)
    answers(m, z)
    time.sleep(1)
    daemon.kill()
    answers(m, z)
    data, err = opener.result()
    assert err == errno.EIO, f"open gave {err}, {len(data or b'')} bytes"
    log = log_of(z)
    assert "build failed" in log and daemon.host in log, log
    assert "lost" in log or "Cannot connect" in log, log
    assert state(z) == "failed"
    assert not any((m.cache / "packages").iterdir())
    assert answers(m, z) < 5

    daemon.start()
    data = read(z)
    assert SP + "sebs_example_util/__init__.py" in names(data)
    assert state(z) == "fresh"
    assert xattr(z, "user.sebs.sha256") == sha256(data)


@pytest.mark.parametrize("how", ("SIGKILL", "SIGTERM"))
def test_dockerd_killed_while_the_build_container_runs(sebsfs, tmp_path, fault_suite, daemon, how):
    """SIGKILL: the daemon crashes; SIGTERM: it is stopped (`systemctl stop
    docker`), stopping the build container on its way out."""
    m = private_mount(sebsfs, tmp_path, fault_suite, daemon, ("builder=docker",), "build")
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    good = read(z)
    good_sha = xattr(z, "user.sebs.sha256")
    good_file = m.cache / "packages" / f"{good_sha}.zip"

    # package.sh runs in the build container: make it announce itself and wait
    original = package_sh(fault_suite).read_text()
    package_sh(fault_suite).write_text(
        original.replace("\n", "\ntouch /mnt/function/.container-started; sleep 60\n", 1))
    opener = OpenInBackground(z)
    assert wait_for(lambda: list((m.cache / "work").glob("*/.container-started")), 120, 0.1), \
        log_of(z)
    answers(m, z)
    if how == "SIGKILL":
        daemon.kill()
    else:
        daemon.terminate()
    answers(m, z)
    data, err = opener.result()
    assert err == errno.EIO, f"open gave {err}, {len(data or b'')} bytes"
    log = log_of(z)
    assert "build failed" in log and daemon.host in log, log
    assert state(z) == "failed"
    assert xattr(z, "user.sebs.sha256") == good_sha
    assert good_file.read_bytes() == good

    daemon.start()
    package_sh(fault_suite).write_text(original + "\n# edited after the daemon came back\n")
    data = read(z)
    assert SP + "sebs_example_util/__init__.py" in names(data)
    assert state(z) == "fresh"
    assert xattr(z, "user.sebs.sha256") == sha256(data)
    assert builds(z) == 3


# ----------------------------------------------------------------- registry

@pytest.fixture
def registry(tmp_path):
    base = tmp_path / "registry"
    base.mkdir()
    r = PrivateRegistry(base, free_port())
    r.start()
    yield r
    r.stop()


def test_registry_killed_while_pushing(sebsfs, tmp_path, fault_suite, daemon, registry):
    repo = f"{REPO}/fn{os.getpid()}"
    m = private_mount(sebsfs, tmp_path, fault_suite, daemon,
                      ("builder=host", f"repository={repo}", f"registry={registry.addr}"), "push")
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    opener = OpenInBackground(img)
    assert wait_for(lambda: "push: " in log_of(img), 120, 0.1), log_of(img)
    time.sleep(1)
    registry.kill()
    answers(m, img)
    data, err = opener.result()
    assert err == errno.EIO, f"open gave {err}: {data!r}"
    log = log_of(img)
    assert f"push to {registry.addr} failed" in log and "build failed" in log, log
    assert state(img) == "failed"
    # nothing lost: the image is built and tagged in the daemon
    assert docker("image", "inspect", f"{repo}:{function_tag(PLATFORM, DYNAMIC_HTML, RUNTIME)}",
                  host=daemon.host, check=False).returncode == 0

    registry.start()
    doc = json.loads(read(img))
    assert doc["registry"] == registry.addr
    assert doc["digest"] and doc["digest"].startswith(f"{registry.addr}/{repo}@sha256:")
    assert registry.manifest(repo, doc["digest"].split("@")[1]) == 200
    assert state(img) == "fresh"


# ------------------------------------------- a full cache, image documents

@pytest.fixture
def small_fs(tmp_path):
    where = tmp_path / "small"
    where.mkdir()
    r = run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "sebsfs-test-enospc", str(where)])
    assert r.returncode == 0, f"cannot mount a tmpfs (run as root): {r.stderr}"
    yield where
    run(["umount", "-l", str(where)])


def test_cache_fills_while_an_image_row_commits(sebsfs, suite, small_fs):
    """The function image builds in the shared daemon, but its row (the
    document's source, with the input manifest) finds no room in the cache:
    EIO, "No space left on device" in both logs, the previous image's row
    stays, and once there is room the next read records the image."""
    from test_faults import fill, many_input_files, says_no_space
    repo = f"{REPO}/enospc{os.getpid()}"
    m = sebsfs(cache=small_fs / "cache", options=("builder=host", f"repository={repo}"))
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    try:
        good = json.loads(read(img))
        many_input_files(suite, 4000)
        filler = fill(small_fs, 256 << 10)
        data, err = OpenInBackground(img).result()
        assert err == errno.EIO, f"open gave {err}: {data!r}"
        answers(m, img)
        assert says_no_space(log_of(img)), log_of(img)
        assert says_no_space(m.stderr()), m.stderr()
        assert "committing" in m.stderr(), m.stderr()   # the row, not the build
        assert xattr(img, "user.sebs.input_hash") == good["input_hash"]

        filler.unlink()
        doc = json.loads(read(img))
        assert doc["input_hash"] != good["input_hash"]
        assert xattr(img, "user.sebs.input_hash") == doc["input_hash"]
        assert state(img) == "fresh"
    finally:
        docker("rmi", "-f", f"{repo}:{function_tag(PLATFORM, DYNAMIC_HTML, RUNTIME)}", check=False)
