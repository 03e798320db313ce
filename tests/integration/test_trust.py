"""Trust regressions of issue 7 through real mounts: corrupted package files,
a Docker daemon that never answers, builds that never end (time limit,
interrupted readers, SIGTERM), builds that change their own inputs, and
eviction by other users.  (Loads: test_load.py; symlinks and freshness:
test_symlinks_freshness.py; processes after kill -9: test_processes.py; the
cache folder: test_cache_dir.py.)"""

import errno
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import Mount
from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, builds, log_text,
                            ls_outside_views, open_errno, read, sha256, state, wait_for, xattr,
                            zip_of)

HANGING_INIT = """#!/bin/bash
echo $$ > "{pidfile}"
sleep 100000
"""


def package_file(m, z):
    return m.cache / "packages" / f"{xattr(z, 'user.sebs.sha256')}.zip"


def overwrite(path, data):
    path.chmod(0o644)
    path.write_bytes(data)


# ------------------------------------------------------------------ item 6

def test_package_damaged_while_unmounted_is_rebuilt(sebsfs):
    m = sebsfs(options=("builder=none",))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    good = read(z)
    f = package_file(m, z)
    m.stop()
    # same size, other bytes: only the content hash can tell
    overwrite(f, bytes(len(good)))
    m2 = sebsfs(options=("builder=none",))
    data = read(z := m2.zip("aws", "python-3.11", DYNAMIC_HTML))
    assert data == good, "a package whose file no longer matches its digest was served"
    assert xattr(z, "user.sebs.sha256") == sha256(data)
    assert builds(z) == 1
    assert "rebuilding" in m2.stderr()


def test_package_truncated_while_mounted_is_rebuilt(sebsfs):
    m = sebsfs(options=("builder=none",))
    z = m.zip("gcp", "python-3.11", DYNAMIC_HTML)
    good = read(z)
    overwrite(package_file(m, z), good[:100])
    data = read(z)
    assert data == good, f"served {len(data)} bytes of a truncated package file"
    assert builds(z) == 2
    assert os.stat(z).st_size == len(good)


def test_verify_always_catches_same_size_overwrite_while_mounted(sebsfs):
    m = sebsfs(options=("builder=none", "verify=always"))
    z = m.zip("local", "python-3.11", DYNAMIC_HTML)
    good = read(z)
    overwrite(package_file(m, z), bytes(reversed(good)))
    assert read(z) == good
    assert builds(z) == 2


def test_scrub_forgets_a_package_damaged_while_mounted(sebsfs):
    m = sebsfs(options=("builder=none", "scrub=1"))
    z = m.zip("azure", "python-3.11", DYNAMIC_HTML)
    good = read(z)
    overwrite(package_file(m, z), bytes(len(good)))
    # within a scrub pass or two the damaged file is no longer the package
    assert wait_for(lambda: state(z) == "absent", 10), state(z)
    assert read(z) == good
    assert builds(z) == 2


# ------------------------------------------------------------------ item 7

class SilentDaemon:
    """A unix socket that accepts connections and never answers (a hung dockerd)."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(64)
        self.conns = []
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("builder", ["docker", "auto"])
def test_hung_daemon_does_not_stall_metadata(sebsfs, tmp_path, suite, builder):
    hung = SilentDaemon(tmp_path / "hung.sock")
    try:
        m = Mount(tmp_path, suite, tmp_path / f"cache-{builder}", (f"builder={builder}",),
                  f"hung-{builder}")
        m.env["DOCKER_HOST"] = f"unix://{hung.path}"
        sebsfs.mounts.append(m)
        t0 = time.monotonic()
        m.start()  # the auto probe gives up quickly
        started = time.monotonic() - t0
        t0 = time.monotonic()
        r = ls_outside_views(m.mnt, timeout=60)  # listing a view would build
        assert r.returncode == 0, r.stderr
        states = [state(m.zip(p, "python-3.11", DYNAMIC_HTML)) for p in ("aws", "gcp", "azure")]
        states.append(state(m.mnt / "aws" / "python-3.11" / f"{DYNAMIC_HTML}.image"))
        metadata = time.monotonic() - t0
        assert all(s == "absent" for s in states), states
        # no request thread waits on the daemon: far below any network timeout
        assert metadata < 5, f"ls -lR and 4 getfattr took {metadata:.1f} s with a hung daemon"
        assert started < 10, f"mounting took {started:.1f} s with a hung daemon"
        if builder == "docker":
            # a build that needs the daemon fails within a bounded time, and says why
            t0 = time.monotonic()
            assert open_errno(m.zip("aws", "python-3.11", DYNAMIC_HTML)) == errno.EIO
            assert time.monotonic() - t0 < 60
            log = log_text(m, "aws", "python-3.11", DYNAMIC_HTML)
            assert "does not answer" in log and hung.path in log, log
            # the filesystem answered throughout
            assert sorted(os.listdir(m.path("aws")))
    finally:
        hung.close()


# ------------------------------------------------------------------ item 8

def hang_init(suite, bench, pidfile):
    init = suite / BENCH_DIRS[bench] / "init.sh"
    init.write_text(HANGING_INIT.format(pidfile=pidfile))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    st = Path(f"/proc/{pid}/stat").read_text()
    return st.split(")")[-1].split()[0] != "Z"


def test_build_timeout_kills_the_step_and_frees_the_worker(sebsfs, suite, tmp_path):
    pidfile = tmp_path / "init.pid"
    hang_init(suite, COMPRESSION, pidfile)
    m = sebsfs(options=("builder=none", "jobs=1", "build_timeout=3"))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    t0 = time.monotonic()
    assert open_errno(z) == errno.EIO
    assert time.monotonic() - t0 < 30
    log = log_text(m, "aws", "python-3.11", COMPRESSION)
    assert "timed out" in log and "build_timeout=3" in log, log
    assert state(z) == "failed"
    pid = int(pidfile.read_text())
    assert wait_for(lambda: not alive(pid), 5), "init.sh survived its build's time limit"
    # the only worker is free again: another package builds
    assert zip_of(read(m.zip("aws", "python-3.11", DYNAMIC_HTML))).testzip() is None
    assert not list((m.cache / "work").iterdir())


def test_killed_reader_goes_away_and_build_goes_on(sebsfs, suite, tmp_path):
    pidfile = tmp_path / "init.pid"
    hang_init(suite, COMPRESSION, pidfile)
    m = sebsfs(options=("builder=none", "build_timeout=60"))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    reader = subprocess.Popen(["cat", str(z)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    assert wait_for(pidfile.exists, 30), "the build never started"
    reader.kill()
    try:
        reader.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("a reader killed while it waited for a build did not go away")
    assert state(z) == "building"


@pytest.mark.parametrize("how", ["sigterm", "unmount"])
def test_stopping_kills_running_builds_quickly(sebsfs, suite, tmp_path, how):
    pidfile = tmp_path / "init.pid"
    hang_init(suite, COMPRESSION, pidfile)
    m = sebsfs(options=("builder=none",))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    errs = []
    t = threading.Thread(target=lambda: errs.append(open_errno(z)), daemon=True)
    t.start()
    assert wait_for(pidfile.exists, 30), "the build never started"
    pid = int(pidfile.read_text())
    if how == "sigterm":
        m.proc.send_signal(signal.SIGTERM)
    else:
        # a mount with a reader waiting is busy: only a lazy unmount detaches it
        subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], capture_output=True, timeout=30)
    assert wait_for(lambda: not alive(pid), 5), f"init.sh outlived the {how} by 5 s"
    try:
        m.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sebsfs did not exit within 10 s of the {how} while a build ran")
    assert not list((m.cache / "work").iterdir()), "the work folder was left behind"
    assert not list((m.cache / "packages").iterdir()), "a cancelled build published"
    t.join(10)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], capture_output=True)
    log = (m.cache / "logs" / "aws" / "python-3.11-x64" / f"{COMPRESSION}.zip.log").read_text()
    assert "[sebsfs] build cancelled" in log, log


# ------------------------------------------------------------------ item 9

def test_init_writing_into_its_own_folder_does_not_rebuild_forever(sebsfs, suite):
    init = suite / BENCH_DIRS[COMPRESSION] / "init.sh"
    init.write_text('#!/bin/bash\ndate +%s%N > "$(dirname "${BASH_SOURCE[0]}")/stamp.txt"\n')
    m = sebsfs(options=("builder=none",))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    first = read(z)
    assert read(z) == first
    assert read(z) == first
    assert builds(z) == 1, "every read rebuilt the package"
    assert state(z) == "fresh"
    log = log_text(m, "aws", "python-3.11", COMPRESSION)
    assert "inputs changed during the build" in log and "stamp.txt" in log, log
    assert "changes its own inputs" in log, log


def test_edit_during_build_is_built_again(sebsfs, suite, tmp_path):
    """An input edited while the build runs: the build runs again from the
    edited inputs instead of recording a package that may lack the edit."""
    flag = tmp_path / "go"
    init = suite / BENCH_DIRS[COMPRESSION] / "init.sh"
    init.write_text(f'#!/bin/bash\ntouch "{tmp_path}/started"\n'
                    f'while [ ! -e "{flag}" ]; do sleep 0.05; done\n')
    m = sebsfs(options=("builder=none",))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("data", read(z)), daemon=True)
    t.start()
    assert wait_for((tmp_path / "started").exists, 30)
    code = suite / BENCH_DIRS[COMPRESSION] / "python" / "function.py"
    code.write_text(code.read_text() + "\n# edited during the build\n")
    flag.touch()
    t.join(60)
    assert "edited during the build" in zip_of(box["data"]).read("function/function.py").decode()
    assert state(z) == "fresh"
    assert builds(z) == 1


def test_edits_during_two_runs_are_built_once_more(sebsfs, suite, tmp_path):
    """An edit during the first run and another during the rerun: the build
    runs a third time, and the package holds the last edit (found by the
    input watch helper: two runs recorded the second edit's hash over the
    first edit's content, and served it as fresh)."""
    init = suite / BENCH_DIRS[COMPRESSION] / "init.sh"
    # run n announces itself (run-n) and waits for go-n
    init.write_text(f'#!/bin/bash\nn=$(ls "{tmp_path}" | grep -c "^run-" || true)\n'
                    f'touch "{tmp_path}/run-$n"\n'
                    f'while [ ! -e "{tmp_path}/go-$n" ]; do sleep 0.05; done\n')
    m = sebsfs(options=("builder=none",))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("data", read(z)), daemon=True)
    t.start()
    code = suite / BENCH_DIRS[COMPRESSION] / "python" / "function.py"
    for run, edit in enumerate(("# edit 1\n", "# edit 2\n", None)):
        assert wait_for((tmp_path / f"run-{run}").exists, 30), f"run {run} never started"
        if edit:
            code.write_text(code.read_text() + edit)
        (tmp_path / f"go-{run}").touch()
    t.join(60)
    shipped = zip_of(box["data"]).read("function/function.py").decode()
    assert shipped.endswith("# edit 1\n# edit 2\n"), shipped[-40:]
    assert state(z) == "fresh"
    assert builds(z) == 1
    (tmp_path / "go-3").touch()  # a rebuild would wait here; none may happen
    assert read(z) == box["data"]
    assert builds(z) == 1


# ------------------------------------------------------------------ item 10

def test_only_the_owner_may_evict(sebsfs, suite):
    base = Path(tempfile.mkdtemp(prefix="sebsfs-acc-"))
    try:
        base.chmod(0o755)
        m = Mount(base, suite, base / "cache", ("builder=none", "allow_other"), "acc")
        sebsfs.mounts.append(m)
        m.start()
        z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
        read(z)
        r = subprocess.run(["rm", "-f", str(z)], user="nobody", capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr, (r.returncode, r.stderr)
        assert state(z) == "fresh"
        # reading stays open to everyone the mount lets in
        r = subprocess.run(["cat", str(z)], user="nobody", capture_output=True)
        assert r.returncode == 0 and len(r.stdout) == os.stat(z).st_size
        os.unlink(z)  # the owner may
        assert state(z) == "absent"
        m.stop()
    finally:
        subprocess.run(["rm", "-rf", str(base)])
