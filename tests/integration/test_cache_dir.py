"""The cache folder: which folder sebsfs takes as its cache (it deletes things
in it at start-up), the modes of what it writes there, and what a killed
build leaves in its log."""

import os
import signal
import stat
import threading

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, SUITE_SOURCE, entries_below,
                            one_line_error, read, run_sebsfs, wait_for,
                            walk_outside_views)

# cache.h: CACHE_LOG_INTERRUPTED
INTERRUPTED = "[sebsfs] build interrupted: sebsfs stopped before the build ended"


def snapshot(folder):
    """Every entry below folder: relative path -> (mode, content of files)."""
    seen = {}
    for rel, p, st in entries_below(folder):
        content = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
        seen[rel] = (st.st_mode, content)
    return seen


def project_folder(path):
    """A folder that looks like a user's project and has what the cache's
    start-up sweep empties: tmp/, work/ and a file in packages/."""
    for rel, text in (("tmp/draft.txt", "draft\n"), ("work/main.c", "int main;\n"),
                      ("packages/x", "not a package\n"), ("notes.txt", "mine\n")):
        p = path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return path


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_empty_cache_value_is_refused(tmp_path):
    cwd = project_folder(tmp_path / "project")
    before = snapshot(cwd)
    r = run_sebsfs(tmp_path, "-f", "-o", "cache=", SUITE_SOURCE, "@MNT@", cwd=cwd)
    one_line_error(r, "sebsfs: cache=: ")
    assert snapshot(cwd) == before


def test_non_empty_folder_is_refused(tmp_path):
    folder = project_folder(tmp_path / "home")
    before = snapshot(folder)
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={folder}", SUITE_SOURCE, "@MNT@")
    one_line_error(r, f"cache={folder}: ", "not a sebsfs cache")
    assert snapshot(folder) == before


def test_private_modes_after_a_build(sebsfs, tmp_path):
    cache = tmp_path / "cache"
    m = sebsfs(cache=cache)
    read(m.zip("aws", "python-3.11", DYNAMIC_HTML))
    assert INTERRUPTED not in m.log("aws", "python-3.11", DYNAMIC_HTML).read_text()
    for d in (cache, cache / "packages", cache / "logs", cache / "logs" / "aws",
              cache / "logs" / "aws" / "python-3.11-x64", cache / "tmp", cache / "work"):
        assert mode(d) == 0o700, d
    for f in ("sebsfs.db", "sebsfs.db-wal", "sebsfs.db-shm", "sebsfs.lock",
              f"logs/aws/python-3.11-x64/{DYNAMIC_HTML}.zip.log"):
        assert mode(cache / f) == 0o600, f
    assert (cache / ".sebsfs-cache").read_text().startswith("sebsfs-cache 1\n")
    assert (cache / "CACHEDIR.TAG").read_text().startswith(
        "Signature: 8a477f597d28d172789f06886806bc55")


def test_listing_creates_no_log_folders(sebsfs, tmp_path):
    cache = tmp_path / "cache"
    m = sebsfs(cache=cache)
    n_files = 0
    for dirpath, _dirnames, filenames in walk_outside_views(m.mnt):
        for name in filenames:
            os.stat(os.path.join(dirpath, name))
            n_files += 1
    assert n_files > 20
    assert os.listdir(cache / "logs") == []


def test_killed_build_log_says_interrupted(sebsfs, suite, tmp_path):
    pid_file = tmp_path / "init.pid"
    init = suite / BENCH_DIRS[DYNAMIC_HTML] / "init.sh"
    init.write_text("echo init started\n"
                    f"echo $$ > '{pid_file}'\n"
                    "exec sleep 300\n")
    cache = tmp_path / "cache"
    m = sebsfs(cache=cache)
    log = m.log("aws", "python-3.11", DYNAMIC_HTML)
    reader = threading.Thread(target=read_ignoring_errors,
                              args=(m.zip("aws", "python-3.11", DYNAMIC_HTML),), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: pid_file.exists() and "init started" in log.read_text(), 60), \
            m.stderr()
        m.signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        reader.join(timeout=10)
        assert not reader.is_alive()
        assert not m.stop()  # unmounts the dead mount
    finally:
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass

    m2 = sebsfs(cache=cache)
    lines = m2.log("aws", "python-3.11", DYNAMIC_HTML).read_text().splitlines()
    assert "init started" in lines
    assert lines[-1] == INTERRUPTED
    assert lines.count(INTERRUPTED) == 1


def read_ignoring_errors(path):
    """Reads path; a read that fails because sebsfs died is expected."""
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError:
        pass
