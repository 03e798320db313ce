"""The cache survives a restart of sebsfs; start-up removes leftovers."""

import os
import subprocess

from sebsfs_testlib import COMPRESSION, DYNAMIC_HTML, builds, read, state, xattr


def test_restart_keeps_cache(sebsfs, tmp_path):
    cache = tmp_path / "cache"
    m1 = sebsfs(cache=cache)
    z = m1.zip("aws", "python-3.11", DYNAMIC_HTML)
    data = read(z)
    sha = xattr(z, "user.sebs.sha256")
    built_at = xattr(z, "user.sebs.built_at")
    assert builds(z) == 1
    assert not m1.stop(), m1.stderr()

    m2 = sebsfs(cache=cache)
    z2 = m2.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert state(z2) == "fresh"
    assert xattr(z2, "user.sebs.sha256") == sha
    assert xattr(z2, "user.sebs.built_at") == built_at
    assert os.stat(z2).st_size == len(data)
    assert read(z2) == data
    assert builds(z2) == 0
    other = m2.zip("aws", "python-3.11", COMPRESSION)
    assert state(other) == "absent"


def test_startup_removes_leftovers(sebsfs, tmp_path):
    cache = tmp_path / "cache"
    m1 = sebsfs(cache=cache)
    z = m1.zip("aws", "python-3.11", COMPRESSION)
    data = read(z)
    sha = xattr(z, "user.sebs.sha256")
    assert not m1.stop()
    junk_tmp = cache / "tmp" / "partial-package.zip"
    junk_pkg = cache / "packages" / ("0" * 64 + ".zip")
    junk_work = cache / "work" / "stale-build" / "function.py"
    for p in (junk_tmp, junk_pkg, junk_work):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    m2 = sebsfs(cache=cache)
    z2 = m2.zip("aws", "python-3.11", COMPRESSION)
    assert read(z2) == data and builds(z2) == 0
    assert (cache / "packages" / f"{sha}.zip").exists()
    for p in (junk_tmp, junk_pkg, junk_work):
        assert not p.exists(), f"leftover {p} was not removed at start-up"


def test_startup_moves_aside_a_work_folder_still_in_use(sebsfs, tmp_path):
    """A program of a sebsfs that died may still write into work/ (its build
    container runs until the next sebsfs's sweep removes it, after start-up):
    the folder then cannot be emptied.  The mount must come up anyway, with an
    empty work/, and the folder is emptied at a later start.  Made
    deterministic with a bind mount inside work/ (rmdir of it is EBUSY, as
    unlinking a folder is while a writer keeps adding to it)."""
    cache = tmp_path / "cache"
    m1 = sebsfs(cache=cache)
    z = m1.zip("aws", "python-3.11", DYNAMIC_HTML)
    data = read(z)
    assert not m1.stop(), m1.stderr()

    empty_source = tmp_path / "bind-source"
    empty_source.mkdir()
    busy = cache / "work" / "dead-build" / "busy"
    busy.mkdir(parents=True)
    (cache / "work" / "dead-build" / "function.py").write_bytes(b"partial")
    subprocess.run(["mount", "--bind", str(empty_source), str(busy)], check=True)
    try:
        m2 = sebsfs(cache=cache)
        z2 = m2.zip("aws", "python-3.11", DYNAMIC_HTML)
        assert read(z2) == data and builds(z2) == 0
        assert os.listdir(cache / "work") == []
        assert "moved it to" in m2.stderr() and "trash" in m2.stderr(), m2.stderr()
        aside = list((cache / "trash").iterdir())
        assert len(aside) == 1 and aside[0].name.startswith("work."), aside
        # builds work in the new work/
        other = m2.zip("aws", "python-3.11", COMPRESSION)
        assert len(read(other)) > 0 and builds(other) == 1
        assert not m2.stop(), m2.stderr()
    finally:
        moved = [p for p in (cache / "trash").glob("work.*/dead-build/busy")]
        for p in moved + [busy]:
            subprocess.run(["umount", str(p)], capture_output=True)
    m3 = sebsfs(cache=cache)
    assert read(m3.zip("aws", "python-3.11", DYNAMIC_HTML)) == data
    assert not (cache / "trash").exists() or list((cache / "trash").iterdir()) == []
    assert not m3.stop(), m3.stderr()
