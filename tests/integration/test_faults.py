"""Faults of issue 8 through real mounts, no Docker needed: a cache folder
that runs out of space (while a build writes its package, while the database
commits), and a database or package file that is truncated, overwritten or
deleted while sebsfs is mounted and while it is not.  (Docker daemon and
registry faults: test_faults_docker.py.)

The promise checked everywhere: never a wrong or partial package.  A fault
gives EIO with a log line that names it, or a rebuild; the previous good
package stays intact, the mount answers throughout, and once the fault is
gone the next open works."""

import errno
import os
import sqlite3

import pytest

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, builds, open_errno, read, run, sha256,
                            state, xattr, zip_of)

PLATFORM, RUNTIME = "aws", "python-3.11"
TMPFS_SIZE = 8 << 20


# ------------------------------------------------------------------ helpers

def function_py(suite):
    return suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "function.py"


def change_function(suite, tag):
    """An input edit that changes the package's bytes."""
    with open(function_py(suite), "a") as f:
        f.write(f"\n# {tag}\n")


def package_file(m, z):
    return m.cache / "packages" / f"{xattr(z, 'user.sebs.sha256')}.zip"


def answers(m):
    """The mount answers listing, stat and xattrs (what must keep working
    while builds fail)."""
    runtime = m.path(PLATFORM, RUNTIME)
    assert f"{DYNAMIC_HTML}.zip" in os.listdir(runtime)
    os.stat(m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))
    assert state(m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)) is not None


def zip_log(m):
    return read(m.log(PLATFORM, RUNTIME, DYNAMIC_HTML)).decode(errors="replace")


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of TMPFS_SIZE bytes at tmp_path/small (unmounted at teardown)."""
    where = tmp_path / "small"
    where.mkdir()
    r = run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "sebsfs-test-enospc",
             str(where)])
    assert r.returncode == 0, f"cannot mount a tmpfs (run as root): {r.stderr}"
    yield where
    run(["umount", "-l", str(where)])


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(fs, leave):
    """Fills fs with one file so that about `leave` bytes stay free."""
    filler = fs / "filler"
    with open(filler, "ab") as f:
        need = free_bytes(fs) - leave
        assert need > 0, f"{fs} has only {free_bytes(fs)} bytes free"
        os.posix_fallocate(f.fileno(), os.fstat(f.fileno()).st_size, need)
    assert free_bytes(fs) <= leave + 4096, free_bytes(fs)
    return filler


def says_no_space(text):
    return "no space left on device" in text.lower()


# ------------------------------------------------------------ a full cache

def work_folder_bytes(package):
    """Room the work folder of package takes on a tmpfs (whole pages)."""
    return sum(-(-i.file_size // 4096) * 4096 for i in zip_of(package).infolist())


@pytest.mark.parametrize("where", ("work-folder", "package-file"))
def test_cache_fills_during_a_build(sebsfs, suite, small_fs, where):
    """No room for the build's work folder (init.sh's copy fails), or room
    for it but not for the zip: EIO, both logs say "No space left on
    device", the old package is served again once the input edit is undone,
    and after freeing space the build works."""
    m = sebsfs(cache=small_fs / "cache", options=("builder=none",))
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    good = read(z)
    good_file = package_file(m, z)
    original = function_py(suite).read_bytes()

    change_function(suite, "edit 1")
    if where == "work-folder":
        filler = fill(small_fs, 16 << 10)
    else:
        # the work folder and the log fit, half the package does not
        filler = fill(small_fs, work_folder_bytes(good) + 4096 + len(good) // 2)
    assert open_errno(z) == errno.EIO
    if where == "package-file":
        assert "step 7" in zip_log(m) and "init.sh exited" not in zip_log(m), zip_log(m)
    answers(m)
    assert state(z) == "failed"
    assert says_no_space(zip_log(m)), zip_log(m)
    assert says_no_space(m.stderr()), m.stderr()
    # nothing half-written took the old package's place
    assert good_file.read_bytes() == good
    assert xattr(z, "user.sebs.sha256") == sha256(good)
    assert not any((m.cache / "tmp").iterdir())
    assert not any((m.cache / "work").iterdir())
    # undoing the edit serves the previous good package again, still no room
    function_py(suite).write_bytes(original)
    assert read(z) == good
    assert builds(z) == 2

    change_function(suite, "edit 2")
    filler.unlink()
    data = read(z)
    assert data != good
    assert any(b"# edit 2" in zip_of(data).read(n) for n in zip_of(data).namelist()
               if n.endswith("function.py"))
    assert xattr(z, "user.sebs.sha256") == sha256(data)
    assert state(z) == "fresh"
    assert builds(z) == 3


def many_input_files(suite, n):
    """n input files that are not copied into the package: they make the
    input manifest (stored in the database row) large while the package
    stays as it is."""
    notes = suite / BENCH_DIRS[DYNAMIC_HTML] / "notes"
    notes.mkdir()
    for i in range(n):
        (notes / f"a-rather-long-file-name-for-a-large-input-manifest-{i:05d}.txt").write_text("")


def test_cache_fills_while_the_database_commits(sebsfs, suite, small_fs):
    """The package file fits but the database row (its manifest) does not:
    the commit fails with EIO and "No space left on device", the old row and
    package stay, and after freeing space the next open publishes."""
    m = sebsfs(cache=small_fs / "cache", options=("builder=none",))
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    good = read(z)
    good_file = package_file(m, z)
    good_hash = xattr(z, "user.sebs.input_hash")

    many_input_files(suite, 4000)
    filler = fill(small_fs, 3 * len(good) + (64 << 10))
    assert open_errno(z) == errno.EIO
    answers(m)
    assert says_no_space(m.stderr()), m.stderr()
    assert "commit" in m.stderr()
    assert says_no_space(zip_log(m)), zip_log(m)
    assert good_file.read_bytes() == good
    assert xattr(z, "user.sebs.input_hash") == good_hash
    with sqlite3.connect(f"file:{m.cache / 'sebsfs.db'}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    filler.unlink()
    assert read(z) == good   # the notes are inputs only: same bytes
    assert xattr(z, "user.sebs.input_hash") != good_hash
    assert state(z) == "fresh"
    m.stop()
    # the row really is in the database
    m2 = sebsfs(cache=small_fs / "cache", options=("builder=none",))
    z2 = m2.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert read(z2) == good
    assert builds(z2) == 0


# ------------------------------------------------- a damaged database

DB_DAMAGE = ("truncated-to-0", "truncated-to-half", "garbage", "deleted")


def damage_db(cache, how):
    """Damages DIR/sebsfs.db (WAL and shared-memory files left as they are)."""
    db = cache / "sebsfs.db"
    size = db.stat().st_size
    if how == "truncated-to-0":
        os.truncate(db, 0)
    elif how == "truncated-to-half":
        os.truncate(db, size // 2)
    elif how == "garbage":
        with open(db, "r+b") as f:
            f.write(os.urandom(size))
    elif how == "deleted":
        db.unlink()
    else:
        raise ValueError(how)


def integrity_ok(cache):
    with sqlite3.connect(f"file:{cache / 'sebsfs.db'}?mode=ro", uri=True) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def reference(sebsfs, tmp_path, suite, bench=DYNAMIC_HTML):
    """The package as a mount with an untouched cache builds it now."""
    m = sebsfs(cache=tmp_path / "reference-cache", options=("builder=none",))
    try:
        return read(m.zip(PLATFORM, RUNTIME, bench))
    finally:
        m.stop()


@pytest.mark.parametrize("how", DB_DAMAGE)
def test_database_damaged_while_unmounted(sebsfs, tmp_path, suite, how):
    """A damaged database at start-up is moved aside (a warning says so) and
    sebsfs starts with an empty one: every package is rebuilt, none is
    served from a row it cannot trust."""
    m = sebsfs(options=("builder=none",))
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    good = read(z)
    m.stop()
    damage_db(m.cache, how)

    m2 = sebsfs(options=("builder=none",))
    answers(m2)
    z = m2.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert read(z) == good
    assert xattr(z, "user.sebs.sha256") == sha256(good)
    if how in ("garbage", "truncated-to-half"):
        assert "damaged" in m2.stderr() and "moved" in m2.stderr(), m2.stderr()
        assert list(m.cache.glob("sebsfs.db.damaged*")), list(m.cache.iterdir())
    m2.stop()
    assert integrity_ok(m.cache)
    # and the new database keeps what was built
    m3 = sebsfs(options=("builder=none",))
    z = m3.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert read(z) == good
    assert builds(z) == 0


@pytest.mark.parametrize("how", DB_DAMAGE)
def test_database_damaged_while_mounted(sebsfs, tmp_path, suite, how):
    """Damage while mounted: what was verified stays served from the intact
    package file; a build that must write to the damaged database fails with
    EIO and says why (or succeeds); nothing wrong or partial is served, and
    the next start repairs."""
    first = sebsfs(options=("builder=none",))
    good = read(first.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))
    first.stop()   # the rows are now in sebsfs.db itself, not only in its WAL
    m = sebsfs(options=("builder=none",))
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert read(z) == good
    damage_db(m.cache, how)
    answers(m)
    assert read(z) == good

    change_function(suite, "edited while the database is damaged")
    try:
        data = read(z)
    except OSError as e:
        assert e.errno == errno.EIO
        data = None
        text = m.stderr()
        assert "cache database" in text and "damaged" in text, text
        assert "the cache database is damaged" in zip_log(m), zip_log(m)
    answers(m)
    m.stop()

    expected = reference(sebsfs, tmp_path, suite)
    if data is not None:
        assert data == expected
    m2 = sebsfs(options=("builder=none",))
    z = m2.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert read(z) == expected
    m2.stop()
    assert integrity_ok(m.cache)


# -------------------------------------------- a damaged package file

PKG_DAMAGE = ("truncated", "overwritten-same-size", "deleted")


def damage_package(path, how):
    if how == "deleted":
        path.unlink()
        return
    path.chmod(0o644)
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "overwritten-same-size":
        path.write_bytes(bytes(reversed(data)))
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how", PKG_DAMAGE)
@pytest.mark.parametrize("when", ("unmounted", "mounted"))
def test_package_file_damaged(sebsfs, how, when):
    """verify=first (default) checks the hash on the first open after start;
    a damage while mounted after that first open is caught by the size check
    (truncated, deleted) or, for a same-size overwrite, by verify=always (and
    by the scrub: test_trust.py).  Either way: a rebuild, never the damaged
    bytes."""
    options = ("builder=none",) if when == "unmounted" else ("builder=none", "verify=always")
    m = sebsfs(options=options)
    z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    good = read(z)
    f = package_file(m, z)
    if when == "unmounted":
        m.stop()
        damage_package(f, how)
        m = sebsfs(options=options)
        z = m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    else:
        damage_package(f, how)
    answers(m)
    assert read(z) == good
    assert builds(z) == (1 if when == "unmounted" else 2)
    assert "rebuilding" in m.stderr() or (how == "deleted" and when == "unmounted"), m.stderr()
    assert f.read_bytes() == good
