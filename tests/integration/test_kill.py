"""kill -9 of sebsfs at every step of a build, for code packages (builder=docker
and builder=host) and function images, through real mounts, a real dockerd and
the loopback registry.

Each run starts a build, waits until the build is in the step it aims at,
stops sebsfs (SIGSTOP), checks again from outside that it really is in that
step (its open files, its child processes, its build log, the daemon's
containers), records what it has running, and SIGKILLs it.  Then sebsfs starts
again on the same cache, and the run checks:
  - no partial package: every file in packages/ belongs to a row and hashes to
    its name and size, a killed key has no row unless its file is complete, and
    `PRAGMA integrity_check` of the real database file says ok;
  - work/ and tmp/ are empty;
  - no container of this cache survives: none labelled sebsfs.cache=<id>, none
    bind-mounting the cache's work folder, and no intermediate container of an
    interrupted image build;
  - no process the dead sebsfs had started survives (pids recorded before the
    kill, with their start times), nor their process groups;
  - the next read rebuilds correctly: a valid zip whose SHA-256 is
    user.sebs.sha256 and that holds the fixture's files; for an image, a
    document whose tag and digest really are in the registry, with every blob.
Besides the aimed kills, a few kill at random delays (seeded; the seed is
printed and SEBSFS_KILL_SEED replays it); the step each of them hit is
recorded too.  The test fails unless every step got at least one kill, so a
step detection that stops working cannot pass unnoticed.

Steps are made observable by the fixture benchmarks (copies of
110.dynamic-html): big code files make the copy, zip and publish take a
moment, and files in a control folder outside the inputs make init.sh,
package.sh (in the build container or on the host) and the image's RUN step
sleep, or add a big layer to push, only when a run asks for it.
"""

import hashlib
import io
import json
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest

from conftest import Mount
from sebsfs_testlib import BENCH_DIRS, DYNAMIC_HTML, READ_TIMEOUT, builds, cmdline, docker, \
    edit_json, read, remove_images, run, state, wait_for, xattr

GROUP = "900.kill"
ZIP_BENCH = "910.kill-zip"
IMAGE_BENCH = "920.kill-image"
PLATFORM, RUNTIME = "aws", "python-3.11"
LOG_DIR = ("logs", "aws", "python-3.11-x64")
BIG_COMPRESSIBLE = 64 << 20   # bytes of big.py: the copy and the zip take a moment
BIG_RANDOM = 12 << 20         # bytes of noise.py: a zip that takes a moment to publish
SLEEP_S = 4                   # how long a slowed step sleeps
GONE_TIMEOUT = 10             # seconds for leftovers to disappear after a restart
SP = ".python_packages/lib/site-packages/"

# Benchmark-level init.sh of both fixtures (its folder is the cwd; $1 the work
# folder).  The control folder lies outside the SeBS tree, so switching a
# step's slowness does not change the inputs.
INIT_SH = """#!/bin/bash
# kill-test fixture: slows a step down when the test asks for it
ctl={ctl}
out=$1
if [ -e "$ctl/slow-init" ]; then echo "kill fixture: init.sh sleeps"; sleep {sleep}; fi
# the marker goes into requirements.txt, which the dependency install gets (the
# dependency layer's key covers it: each aimed run has its own nonce, so its
# install really runs instead of reusing a cached layer)
if [ -e "$ctl/slow-install" ]; then echo "# kill-slow-package $(cat "$ctl/slow-install")" >> "$out/requirements.txt"; fi
if [ -e "$ctl/slow-image" ]; then cp "$ctl/slow-image" "$out/.kill-slow-image"; fi
if [ -e "$ctl/slow-push" ]; then head -c 48M /dev/urandom > "$out/kill-blob.bin"; fi
true
"""
PACKAGE_SH_SLOW = """if grep -q kill-slow-package requirements.txt 2>/dev/null; then
  echo "kill fixture: package.sh sleeps"
  sleep {sleep}
fi
"""
# Appended to the suite's aws/python Dockerfile.function: a RUN step that
# sleeps while the daemon builds, when init.sh put the flag into the context.
DOCKERFILE_SLOW = """
RUN if [ -e function/.kill-slow-image ]; then echo "{marker}"; sleep {sleep}; fi
"""

PLAN = (
    # (target, builder, step)
    [("zip", "docker", s) for s in ("copy", "copy", "init.sh", "init.sh", "install-container",
                                    "install-container", "install-container", "zip", "zip",
                                    "publish", "publish", "random", "random", "random")]
    + [("zip", "host", s) for s in ("init.sh", "install-host", "install-host", "zip", "random")]
    + [("image", "docker", s) for s in ("init.sh", "image-build", "image-build", "image-build",
                                       "push", "push", "random", "random")]
)
REQUIRED_STEPS = {"copy", "init.sh", "install-container", "install-host", "zip", "publish",
                  "image-build", "push"}
# what a run aimed at a step asks the fixture for
SLOW_FILES = {"init.sh": ["slow-init"], "install-container": ["slow-install"],
              "install-host": ["slow-install"], "image-build": ["slow-image"],
              "push": ["slow-push"]}
# how many builds an aimed run may watch for its step (a build whose step went
# by unseen ends and is evicted; the copy and publish windows are short)
ATTEMPTS = 4


# ----------------------------------------------------------------- fixtures

@pytest.fixture
def kill_suite(suite, tmp_path):
    """The suite copy with the two fixture benchmarks and a slowable RUN step."""
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    marker = f"sebsfs-kill-{uuid.uuid4().hex[:12]}"
    src = suite / BENCH_DIRS[DYNAMIC_HTML]
    for name in (ZIP_BENCH, IMAGE_BENCH):
        dst = suite / "benchmarks" / GROUP / name
        shutil.copytree(src, dst, symlinks=True)
        shutil.rmtree(dst / "nodejs")
        edit_json(dst / "config.json", lambda d: d.__setitem__("languages", ["python"]))
        (dst / "init.sh").write_text(INIT_SH.format(ctl=ctl, sleep=SLEEP_S))
        pkg = dst / "python" / "package.sh"
        lines = pkg.read_text().splitlines(keepends=True)
        at = lines.index("set -euo pipefail\n") + 1
        pkg.write_text("".join(lines[:at]) + PACKAGE_SH_SLOW.format(sleep=SLEEP_S)
                       + "".join(lines[at:]))
    py = suite / "benchmarks" / GROUP / ZIP_BENCH / "python"
    line = b"# kill-test fixture: a big code file, so copying and zipping take a moment\n"
    with open(py / "big.py", "wb") as f:
        for _ in range(BIG_COMPRESSIBLE // (1 << 20)):
            f.write(line * ((1 << 20) // len(line)))
    (py / "noise.py").write_bytes(random.Random(7).randbytes(BIG_RANDOM))
    dockerfile = suite / "dockerfiles" / "aws" / "python" / "Dockerfile.function"
    dockerfile.write_text(dockerfile.read_text()
                          + DOCKERFILE_SLOW.format(marker=marker, sleep=SLEEP_S))
    return suite, ctl, marker


@pytest.fixture
def repo():
    name = f"sebsfs-test/kill{uuid.uuid4().hex[:10]}"
    yield name
    remove_images(name)


# ----------------------------------------------------------------- /proc

def proc_stat(pid):
    """(state, ppid, pgid, starttime) of pid, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def descendants(root):
    """[(pid, starttime, pgid, cmdline)] of every live descendant of root."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                children.setdefault(st[1], []).append((int(d), st))
    out, todo = [], [root]
    while todo:
        for pid, st in children.get(todo.pop(), []):
            if st[0] not in "ZX":
                out.append((pid, st[3], st[2], cmdline(pid)))
            todo.append(pid)
    return out


def still_running(pid, starttime):
    st = proc_stat(pid)
    return st is not None and st[3] == starttime and st[0] not in "ZX"


def live_members(groups):
    """[(pid, cmdline)] of the processes in any of groups that still run
    (zombies, dead and only waiting for their parent, do not count)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[2] in groups and st[0] not in "ZX":
                out.append((int(d), cmdline(int(d))))
    return out


def fd_targets(pid):
    out = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:
            pass
    return out


# ----------------------------------------------------------------- docker state

def containers_of(cache):
    """(labelled, binding): IDs of containers labelled with the cache's id, and
    of containers that bind-mount its work folder (whatever their labels)."""
    id_file = cache / "sebsfs.id"
    labelled = []
    if id_file.exists():  # (checked by check_cache; tolerated here for the report)
        labelled = docker("ps", "-aq", "--no-trunc", "--filter",
                          f"label=sebsfs.cache={id_file.read_text().strip()}").stdout.split()
    work = str(cache / "work") + "/"
    binding = []
    ids = docker("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        r = docker("inspect", "--format", "{{.Id}} {{json .HostConfig.Binds}}", *ids, check=False)
        for line in r.stdout.splitlines():
            cid, _, binds = line.partition(" ")
            if work in binds:
                binding.append(cid)
    return labelled, binding


def marked_containers(marker):
    """Containers (intermediate ones of image builds included) whose command
    holds the fixture's RUN marker."""
    r = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.Command}}")
    return [line.split("\t")[0] for line in r.stdout.splitlines() if marker in line]


def registry_get(addr, path, method="GET"):
    accept = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.oci.image.index.v1+json"])
    req = urllib.request.Request(f"http://{addr}/v2/{path}", method=method,
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict(r.headers), r.read()


def check_pushed(addr, repo, doc):
    """The document's digest and its tag are in the registry, complete."""
    assert doc["registry"] == addr
    assert doc["digest"] and doc["digest"].startswith(f"{addr}/{repo}@sha256:"), doc
    digest = doc["digest"].split("@", 1)[1]
    tag = doc["image"].rsplit(":", 1)[1]
    status, headers, body = registry_get(addr, f"{repo}/manifests/{digest}")
    assert status == 200 and headers.get("Docker-Content-Digest") == digest
    assert hashlib.sha256(body).hexdigest() == digest.split(":", 1)[1]
    status, headers, _ = registry_get(addr, f"{repo}/manifests/{tag}")
    assert headers.get("Docker-Content-Digest") == digest, \
        f"tag {tag} names {headers.get('Docker-Content-Digest')}, not the document's {digest}"
    manifest = json.loads(body)
    blobs = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]
    for blob in blobs:
        status, _, _ = registry_get(addr, f"{repo}/blobs/{blob}", method="HEAD")
        assert status == 200, f"blob {blob} of {digest} missing"


# ----------------------------------------------------------------- the cache

def last_sebsfs_line(log):
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 16384))
            tail = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    lines = [ln for ln in tail.split("\n") if ln.startswith("[sebsfs] ")]
    return lines[-1] if lines else ""


def check_cache(cache, key_target):
    """Cache invariants after a restart; returns the killed key's row (or None)."""
    assert sorted(os.listdir(cache / "work")) == [], "work/ not swept"
    assert sorted(os.listdir(cache / "tmp")) == [], "tmp/ not swept"
    db = sqlite3.connect(f"file:{cache / 'sebsfs.db'}?mode=ro", uri=True, timeout=30)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = db.execute("SELECT benchmark, kind, path, size, sha256, image_id FROM packages"
                          " WHERE path IS NOT NULL OR image_id IS NOT NULL").fetchall()
    finally:
        db.close()
    referenced = set()
    for bench, kind, path, size, sha, image_id in rows:
        if kind == "zip":
            f = cache / path
            assert f.is_file(), f"row {bench} names a missing {path}"
            data = f.read_bytes()
            assert len(data) == size and hashlib.sha256(data).hexdigest() == sha, \
                f"{path}: a partial or damaged package under a row"
            assert f.name == f"{sha}.zip"
            referenced.add(f.name)
    for f in os.listdir(cache / "packages"):
        assert f in referenced, f"packages/{f}: no row references it (a partial package?)"
    mine = [r for r in rows if r[0] == key_target[0] and r[1] == key_target[1]]
    return mine[0] if mine else None


# ----------------------------------------------------------------- one kill

class Reader(threading.Thread):
    """Reads a package (which starts its build) until sebsfs answers or dies."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.error, self.data = path, None, None
        self.start()

    def run(self):
        try:
            with open(self.path, "rb") as f:
                self.data = f.read()
        except OSError as e:
            self.error = e


class KillTest:
    def __init__(self, sebsfs, suite, ctl, cache, marker, repo, registry):
        self.sebsfs, self.suite, self.ctl, self.cache = sebsfs, suite, ctl, cache
        self.marker, self.repo, self.registry = marker, repo, registry
        self.mount = None
        self.builder = None
        self.starts = 0
        self.hits = []          # (target, builder, aimed step, step hit, seconds)
        self.found = {"containers": 0, "processes": 0}  # what the killed ones ran

    def options(self, builder):
        return (f"builder={builder}", f"repository={self.repo}", f"registry={self.registry}")

    def ensure_mount(self, builder):
        if self.mount is None or self.builder != builder:
            if self.mount is not None:
                assert self.mount.stop() == []
            self.starts += 1
            m = Mount(self.cache.parent, self.suite, self.cache, self.options(builder),
                      f"kill-{self.starts}")
            # pyenv's pip shim takes a lock in ~/.pyenv for its rehash after
            # every install; a kill -9 in between leaves that lock behind,
            # and every later pip of the machine waits for it and fails.
            # That is pyenv's, not sebsfs's: the host builder here uses the
            # system's pip.
            m.env["PATH"] = os.pathsep.join(
                d for d in m.env["PATH"].split(os.pathsep) if "/.pyenv/" not in d + "/")
            self.sebsfs.mounts.append(m)
            self.mount = m.start()
            self.builder = builder
        return self.mount

    def target(self, target):
        bench = ZIP_BENCH if target == "zip" else IMAGE_BENCH
        return bench, self.mount.path(PLATFORM, RUNTIME, f"{bench}.{target}")

    def set_slow(self, names, nonce=""):
        for f in self.ctl.iterdir():
            f.unlink()
        for n in names:
            (self.ctl / n).write_text(nonce)

    def classify(self, target, bench):
        """The step the build is in, seen from outside: the last line sebsfs
        wrote to the build log, confirmed by what it has open or running."""
        pid = self.mount.proc.pid
        last = last_sebsfs_line(self.cache.joinpath(*LOG_DIR, f"{bench}.{target}.log"))
        if not last:
            return "checking"
        line = last[len("[sebsfs] "):]
        work, tmp = str(self.cache / "work") + "/", str(self.cache / "tmp") + "/"
        if line.startswith("step 2:"):
            fds = fd_targets(pid)
            bench_dir = str(self.suite / "benchmarks" / GROUP / bench) + "/"
            if any(f.startswith(work) for f in fds) and any(f.startswith(bench_dir) for f in fds):
                return "copy"
            return "prepare"
        if line.startswith("step 3:"):
            kids = [c for _, _, _, c in descendants(pid)]
            return "init.sh" if any("init.sh" in c for c in kids) else "prepare"
        if line.startswith("step 6: pip3") or (line.startswith("step 6: bash")
                                                and line.endswith("site-packages")):
            kids = [c for _, _, _, c in descendants(pid)]
            return "install-host" if any("pip" in c or "package.sh" in c for c in kids) \
                else "install"
        if line.startswith("step 6: build container"):
            return "install-container"
        if line.startswith("step 7:"):
            if any(f.startswith(tmp) and f.endswith(".zip") for f in fd_targets(pid)):
                building = any(d.startswith("build-") for d in os.listdir(self.cache / "work"))
                return "zip" if building else "publish"
            return "layout"
        if line.startswith("push: pushed"):
            return "record"
        if line.startswith("push: "):
            return "push"
        if line.startswith("build: ") and " is sha256:" not in line:
            return "image-build"
        if line.startswith("build succeeded"):
            return "done"
        return "other: " + line[:50]

    def confirm(self, step, seen):
        """Whether sebsfs, stopped, is really in step (seen: classify's answer)."""
        if seen != step:
            return False
        if step == "install-container":
            return bool(containers_of(self.cache)[1])
        return True

    def kill_once(self, target, builder, step, delay, extra_fraction):
        """delay: seconds after the read for a random kill; extra_fraction: how
        far into a long step an aimed kill goes (both drawn up front from the
        seed, so a seed replays them whatever the timing)."""
        m = self.ensure_mount(builder)
        bench, path = self.target(target)
        aimed = step != "random"
        nonce = uuid.uuid4().hex
        # a random kill of an image build gets a real RUN step to land in
        # (the daemon would otherwise serve every step from its cache)
        slow = ["slow-image"] if (target, step) == ("image", "random") else SLOW_FILES.get(step, [])
        self.set_slow(slow, nonce)
        t0 = time.monotonic()
        for attempt in range(ATTEMPTS if aimed else 1):
            if attempt:
                # the step went by unseen: let the build end and try again
                # (a new nonce: a slowed install must not come from the layer
                # the last attempt cached)
                assert wait_for(lambda: not reader.is_alive(), READ_TIMEOUT)
                os.unlink(path)
                self.set_slow(slow, f"{nonce}-{attempt}")
            reader = Reader(path)
            started = time.monotonic()
            extra = None
            while reader.is_alive() or not aimed:
                assert m.proc.poll() is None, f"sebsfs died on its own:\n{m.stderr()}"
                if aimed:
                    seen = self.classify(target, bench)
                    if seen != step:
                        time.sleep(0.001)
                        continue
                    # a random moment inside a long step, at once in a short one
                    if extra is None and step in ("init.sh", "install-container",
                                                  "install-host", "image-build"):
                        extra = time.monotonic() + extra_fraction * SLEEP_S / 2
                    if extra is not None and time.monotonic() < extra:
                        time.sleep(0.005)
                        continue
                elif time.monotonic() - started < delay:
                    time.sleep(0.005)
                    continue
                os.kill(m.proc.pid, signal.SIGSTOP)
                seen = self.classify(target, bench)
                if aimed and not self.confirm(step, seen):
                    os.kill(m.proc.pid, signal.SIGCONT)
                    extra = None
                    continue
                return self.kill_stopped(target, builder, step, seen, bench, reader, t0)
        pytest.fail(f"{target}/{builder}: never caught the build in step {step} "
                    f"in {ATTEMPTS} builds")

    def kill_stopped(self, target, builder, step, seen, bench, reader, t0):
        m = self.mount
        procs = descendants(m.proc.pid)
        labelled, binding = containers_of(self.cache) if builder == "docker" else ([], [])
        m.signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        problems = m.stop()
        assert problems == [], problems
        reader.join(READ_TIMEOUT)
        assert not reader.is_alive()
        self.mount = None
        self.set_slow([])
        # what the dead sebsfs had running
        if step == "install-container":
            assert binding, "killed in the build container, but no container had the work folder"
        assert wait_for(lambda: not any(still_running(p, s) for p, s, _, _ in procs), 5), \
            "processes of the killed sebsfs survive: " + str(
                [(p, c) for p, s, _, c in procs if still_running(p, s)])
        # the groups they lead (a child caught between fork and setpgid is
        # still in sebsfs's group, which is the test's own)
        groups = {g for _, _, g, _ in procs} & {p for p, _, _, _ in procs}
        assert wait_for(lambda: not live_members(groups), 5), \
            f"processes in the groups of the killed sebsfs's programs survive: " \
            f"{live_members(groups)}"
        self.found["processes"] += len(procs)
        self.found["containers"] += len(set(labelled) | set(binding))
        # restart on the same cache
        m = self.ensure_mount(builder)
        row = check_cache(self.cache, (bench, target))
        log = self.cache.joinpath(*LOG_DIR, f"{bench}.{target}.log").read_text(errors="replace")
        assert "build succeeded" in log or "[sebsfs] build interrupted" in log, log[-2000:]
        bench, path = self.target(target)
        # never "building" or "failed": a killed build is no verdict.  With a
        # row (committed before the kill) a package that depends on a Docker
        # image (the build image, an image's base) shows "stale" until the
        # checker learnt that image's ID, which is one of its inputs.
        st = state(path)
        if row is None:
            assert st == "absent", st
        else:
            assert st in (("fresh",) if builder == "host" else ("fresh", "stale")), (st, row)
        assert wait_for(lambda: containers_of(self.cache) == ([], []), GONE_TIMEOUT), \
            f"containers of the killed sebsfs survive the restart: {containers_of(self.cache)}"
        assert wait_for(lambda: not marked_containers(self.marker), GONE_TIMEOUT), \
            "an interrupted image build left its container"
        assert len((self.cache / "sebsfs.id").read_text().strip()) == 32, "no cache id"
        # the next read rebuilds (or serves what was committed before the kill)
        if target == "zip":
            self.check_zip(path, builder)
        else:
            self.check_image(path)
        seconds = time.monotonic() - t0
        self.hits.append((target, builder, step, seen, seconds))
        print(f"kill {len(self.hits):2d}: {target}/{builder} aimed at {step}, hit {seen},"
              f" {seconds:.1f} s")
        os.unlink(path)   # the next run builds again

    def check_zip(self, path, builder):
        data = read(path)
        assert builds(path) in (0, 1)
        assert hashlib.sha256(data).hexdigest() == xattr(path, "user.sebs.sha256")
        zf = zipfile.ZipFile(io.BytesIO(data))
        assert zf.testzip() is None
        names = set(zf.namelist())
        for n in ("function/function.py", "function/big.py", "function/noise.py",
                  "handler.py", SP + "sebs_example_util/__init__.py", SP + ".sebs-packaged"):
            assert n in names, f"{n} missing from the rebuilt package"
        assert not [n for n in names if "kill-slow" in n or "kill-blob" in n]
        assert zf.getinfo("function/noise.py").file_size == BIG_RANDOM
        if builds(path) == 1:
            log = read(Path(str(path) + ".log")).decode(errors="replace")
            assert f"(builder: {builder}" in log and "[sebsfs] build succeeded" in log, log

    def check_image(self, path):
        raw = read(path)
        doc = json.loads(raw)
        assert builds(path) in (0, 1)
        check_pushed(self.registry, self.repo, doc)
        image_id = docker("image", "inspect", "--format", "{{.Id}}", doc["image"]).stdout.strip()
        assert image_id == doc["id"]


def test_kill9_at_every_step_leaves_nothing_behind(sebsfs, kill_suite, tmp_path, repo, registry):
    suite, ctl, marker = kill_suite
    r = run(["docker", "version", "--format", "{{.Server.APIVersion}}"])
    assert r.returncode == 0, f"no Docker daemon (run scripts/services start): {r.stderr}"
    seed = int(os.environ.get("SEBSFS_KILL_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"kill test seed {seed} (SEBSFS_KILL_SEED={seed} replays the random delays)")
    rng = random.Random(seed)
    draws = [(rng.uniform(0.05, 4.0 if target == "zip" else 6.0), rng.random())
             for target, _, _ in PLAN]
    kt = KillTest(sebsfs, suite, ctl, tmp_path / "cache", marker, repo, registry)
    t0 = time.monotonic()
    try:
        for (target, builder, step), (delay, extra) in zip(PLAN, draws):
            kt.kill_once(target, builder, step, delay, extra)
    finally:
        # a failure must not leave this cache's containers to the next tests
        # (test_docker_builder counts the build image's containers)
        labelled, binding = containers_of(tmp_path / "cache")
        for cid in set(labelled + binding):
            docker("rm", "-f", cid, check=False)
    total = time.monotonic() - t0
    if kt.mount is not None:
        assert kt.mount.stop() == []
    hit = {}
    for _, _, _, seen, _ in kt.hits:
        hit[seen] = hit.get(seen, 0) + 1
    print(f"kill test: {len(kt.hits)} kills in {total:.0f} s; per step hit: "
          + ", ".join(f"{k} {v}" for k, v in sorted(hit.items()))
          + f"; the killed sebsfs had {kt.found['containers']} container(s) and "
          f"{kt.found['processes']} process(es) running")
    assert len(kt.hits) >= 20
    missing = REQUIRED_STEPS - set(hit)
    assert not missing, f"no kill hit {sorted(missing)} (seed {seed})"
    # aimed kills hit what they aimed at
    for target, builder, step, seen, _ in kt.hits:
        assert step == "random" or seen == step, (target, builder, step, seen)
