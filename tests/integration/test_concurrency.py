"""Concurrent readers share one build; builds never block the request loop."""

import os
import subprocess
import sys
import time
import zipfile

import pytest

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, SLEEP, builds,
                            ls_outside_views, read, sha256, state, wait_for)

READERS = 8


def slow_init(suite, seconds):
    init = suite / BENCH_DIRS[COMPRESSION] / "init.sh"
    text = init.read_text()
    init.write_text(text.replace("set -euo pipefail\n", f"set -euo pipefail\nsleep {seconds}\n", 1))


@pytest.mark.parametrize("platform,runtime", [("aws", "python-3.11"), ("gcp", "python-3.10"),
                                              ("local", "python-3.11"), ("azure", "python-3.11")])
def test_eight_cat_processes_share_one_build(mount, tmp_path, platform, runtime):
    """Every reader gets the whole zip.  (Readers racing with the kernel-cache
    invalidation that follows a build once got an empty file: several
    packages make that race likely to show.)"""
    z = mount.zip(platform, runtime, DYNAMIC_HTML)
    outs = [tmp_path / f"out{i}.zip" for i in range(READERS)]
    procs = []
    for out in outs:
        with open(out, "wb") as f:
            procs.append(subprocess.Popen(["cat", str(z)], stdout=f))
    for p in procs:
        assert p.wait(timeout=300) == 0
    datas = [o.read_bytes() for o in outs]
    assert [len(d) for d in datas] == [len(datas[0])] * READERS
    assert len(datas[0]) > 0
    assert all(d == datas[0] for d in datas)
    assert zipfile.ZipFile(outs[0]).testzip() is None
    assert builds(z) == 1
    assert read(z) == datas[0]


def test_eight_python_zipfile_readers_share_one_build(mount):
    z = mount.zip("azure", "nodejs-20", DYNAMIC_HTML)
    code = ("import hashlib,sys,zipfile\n"
            "data=open(sys.argv[1],'rb').read()\n"
            "zf=zipfile.ZipFile(sys.argv[1]); assert zf.testzip() is None\n"
            "print(hashlib.sha256(data).hexdigest(), len(zf.namelist()))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(z)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(READERS)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(out.split())
    assert all(r == results[0] for r in results)
    assert builds(z) == 1
    assert results[0][0] == sha256(read(z))


def test_listing_is_instant_during_a_long_build(mount, suite):
    cached = mount.zip("aws", "nodejs-20", SLEEP)
    cached_data = read(cached)
    slow_init(suite, 5)
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    reader = subprocess.Popen(["cat", str(z)], stdout=subprocess.PIPE)
    try:
        assert wait_for(lambda: state(z) == "building", 5), "the build never reported state=building"
        t0 = time.monotonic()
        # down to the directory views, whose listing builds (test_dir_views.py)
        r = ls_outside_views(mount.mnt, timeout=30)
        elapsed = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert elapsed < 2.0, f"ls -lR took {elapsed:.2f} s during a build"
        t0 = time.monotonic()
        assert read(cached, timeout=10) == cached_data
        os.stat(z)
        state(z)
        assert time.monotonic() - t0 < 2.0, "cached reads and stat must not wait for builds"
        assert reader.poll() is None, "the reader finished before the 5 s build could"
    finally:
        out, _ = reader.communicate(timeout=300)
    assert reader.returncode == 0
    assert zipfile.ZipFile(__import__("io").BytesIO(out)).testzip() is None
    assert builds(z) == 1


def test_different_packages_build_in_parallel(sebsfs, suite):
    """Two packages build at the same time: both builds reach init.sh (which
    sleeps 6 s) while the other is still inside it.  With one build at a time
    the second log would stay empty for 6 s."""
    m = sebsfs(options=("builder=host", "jobs=4"))
    slow_init(suite, 6)
    platforms = ("aws", "gcp")
    zips = [m.zip(p, "python-3.11", COMPRESSION) for p in platforms]
    logs = [m.log(p, "python-3.11", COMPRESSION) for p in platforms]
    procs = [subprocess.Popen(["cat", str(z)], stdout=subprocess.DEVNULL) for z in zips]

    def both_in_init():
        return all(b"step 3: bash -e" in lg.read_bytes() for lg in logs)
    try:
        assert wait_for(both_in_init, 4.0), "the two builds did not overlap"
    finally:
        for p in procs:
            assert p.wait(timeout=300) == 0
    assert all(builds(z) == 1 for z in zips)
