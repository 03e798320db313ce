"""The cache survives a restart of sebsfs; start-up removes leftovers."""

import os

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
