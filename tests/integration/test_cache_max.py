"""-o cache_max=SIZE: the least recently used packages are evicted after each
build (and at start-up) until the package files total at most SIZE; a reader
that holds an evicted package open reads all of it."""

import os
import random
import threading
import time

import pytest

from sebsfs_testlib import (COMPRESSION, DYNAMIC_HTML, SUITE_SOURCE, builds, one_line_error,
                            read, run_sebsfs, sha256, state, with_timeout, xattr)

# python-3.10 311.compression differs per platform (wrappers, layout): four
# distinct package files of about 3.5-4.7 KiB each
PLATFORMS = ["aws", "gcp", "local", "azure"]
RUNTIME = "python-3.10"


def zips(m, platforms=PLATFORMS, bench=COMPRESSION):
    return [m.zip(p, RUNTIME, bench) for p in platforms]


def cache_bytes(m):
    """Bytes of the package files in the cache folder, as on disk."""
    d = m.cache / "packages"
    return sum(f.stat().st_size for f in d.iterdir())


def cached_file(m, sha):
    return m.cache / "packages" / f"{sha}.zip"


def evictions(m):
    return [line for line in m.stderr().splitlines() if "evicted " in line]


def test_least_recently_used_are_evicted(sebsfs):
    m = sebsfs(options=("builder=host", "cache_max=10K"))
    aws, gcp, local, azure = zips(m)
    data = {}
    for z in (aws, gcp):
        data[z] = read(z)
    assert cache_bytes(m) == len(data[aws]) + len(data[gcp]) <= 10240
    assert evictions(m) == []

    read(aws)                      # aws is now used more recently than gcp
    data[local] = read(local)      # 3 packages > 10 KiB: gcp goes, aws stays
    assert state(gcp) == "absent" and xattr(gcp, "user.sebs.sha256") is None
    assert state(aws) == "fresh" and state(local) == "fresh"
    assert cache_bytes(m) == len(data[aws]) + len(data[local]) <= 10240
    assert len(evictions(m)) == 1
    line = evictions(m)[0]
    assert f"evicted gcp/{RUNTIME}/{COMPRESSION}.zip (least recently used, cache " in line, line
    assert "> cache_max 10 KiB)" in line, line

    # gcp rebuilds when read again (same bytes); aws, used before local, goes
    assert read(gcp) == data[gcp]
    assert builds(gcp) == 2
    assert state(aws) == "absent" and state(local) == "fresh"
    assert cache_bytes(m) <= 10240
    assert f"evicted aws/{RUNTIME}/{COMPRESSION}.zip" in evictions(m)[1]

    # reads of what is cached build nothing
    assert read(local) == data[local] and builds(local) == 1
    assert read(aws) == data[aws] and builds(aws) == 2


def test_total_stays_within_cache_max_after_each_build(sebsfs):
    limit = 12 * 1024
    m = sebsfs(options=("builder=host", f"cache_max={limit}"))
    order = zips(m) + zips(m, ["openwhisk"]) + [m.zip("aws", RUNTIME, DYNAMIC_HTML)]
    order += zips(m)[:2]
    for z in order:
        data = read(z)
        assert sha256(data) == xattr(z, "user.sebs.sha256")
        # the package just read is kept, whatever else went
        assert cached_file(m, sha256(data)).exists()
        total = cache_bytes(m)
        assert total <= limit, (z, total)
    assert len(evictions(m)) >= 4


def test_reader_of_an_evicted_package_reads_all_of_it(sebsfs):
    m = sebsfs(options=("builder=host", "cache_max=9K"))
    held, *others = zips(m)
    # opening builds it; nothing is read yet, so every byte read below comes
    # from sebsfs after the eviction, not from the kernel's page cache
    fd = with_timeout(lambda: os.open(held, os.O_RDONLY), what=f"opening {held}")
    try:
        sha = xattr(held, "user.sebs.sha256")
        size = os.fstat(fd).st_size
        for z in others[:2]:       # each build evicts the least recently used
            read(z)
        assert state(held) == "absent"
        assert not cached_file(m, sha).exists()
        assert any(f"evicted aws/{RUNTIME}/{COMPRESSION}.zip" in e for e in evictions(m))
        assert os.fstat(fd).st_size == size    # the size shown stays

        def read_all():
            chunks = []
            while True:
                b = os.read(fd, 1000)
                if not b:
                    return b"".join(chunks)
                chunks.append(b)
        data = with_timeout(read_all, what="reading the evicted package")
    finally:
        os.close(fd)
    assert len(data) == size
    assert sha256(data) == sha
    assert builds(held) == 1       # the reader did not need a rebuild


def test_reads_during_evictions_are_whole(sebsfs):
    """Readers keep opening packages that builds evict all the time (the
    cache holds about two of four): every read is the whole, right package."""
    m = sebsfs(options=("builder=host", "cache_max=9K", "jobs=2"))
    pkgs = zips(m)
    expected = {}
    for z in pkgs:
        data = read(z)
        assert sha256(data) == xattr(z, "user.sebs.sha256")
        expected[z] = data
    failures = []
    rng = random.Random(8)
    # (package, pause between open and read): a pause lets builds of other
    # readers evict the package while it is open and not yet read
    plans = [[(rng.choice(pkgs), rng.uniform(0, 0.6)) for _ in range(6)] for _ in range(3)]

    def reader(plan):
        for z, pause in plan:
            try:
                with open(z, "rb") as f:
                    time.sleep(pause)
                    # read from sebsfs, not from pages an earlier read left
                    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                    got = f.read()
            except OSError as e:
                failures.append(f"{z}: {e}")
                continue
            if got != expected[z]:
                failures.append(f"{z}: {len(got)} bytes, expected {len(expected[z])}"
                                f" ({'same' if sha256(got) == sha256(expected[z]) else 'other'}"
                                " content)")

    threads = [threading.Thread(target=reader, args=(p,), daemon=True) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads), "a reader hung"
    assert failures == []
    assert len(evictions(m)) >= 3
    assert cache_bytes(m) <= 9 * 1024


def test_restart_with_smaller_cache_max_evicts_at_startup(sebsfs, tmp_path):
    # exact package sizes decide here, so no dependency layers (whose
    # eviction test_layers.py covers) take a share of the limit
    cache = tmp_path / "cache"
    m1 = sebsfs(cache=cache, options=("builder=host", "dep_layers=off"))  # no limit
    aws, gcp, local, azure = zips(m1)
    sha = {}
    for z in (aws, gcp, local, azure):
        read(z)
        sha[z.parent.parent.name] = xattr(z, "user.sebs.sha256")
    # uses within the last minute are only in memory: the unmount writes them
    read(aws)
    read(gcp)
    assert evictions(m1) == []
    assert not m1.stop(), m1.stderr()

    m2 = sebsfs(cache=cache, options=("builder=host", "dep_layers=off", "cache_max=9K"))
    aws, gcp, local, azure = zips(m2)
    lines = evictions(m2)
    assert len(lines) == 2, m2.stderr()
    assert f"evicted local/{RUNTIME}/{COMPRESSION}.zip" in lines[0]
    assert f"evicted azure/{RUNTIME}/{COMPRESSION}.zip" in lines[1]
    assert cache_bytes(m2) <= 9 * 1024
    assert not cached_file(m2, sha["local"]).exists()
    assert cached_file(m2, sha["aws"]).exists() and cached_file(m2, sha["gcp"]).exists()
    assert state(aws) == "fresh" and state(gcp) == "fresh"
    assert state(local) == "absent" and state(azure) == "absent"
    read(aws)
    assert builds(aws) == 0
    read(local)
    assert builds(local) == 1


def test_package_bigger_than_cache_max_is_served_and_kept_until_next_build(sebsfs):
    m = sebsfs(options=("builder=host", "cache_max=1K"))
    aws, gcp = zips(m, ["aws", "gcp"])
    data = read(aws)
    assert len(data) > 1024
    assert sha256(data) == xattr(aws, "user.sebs.sha256")
    assert state(aws) == "fresh"
    assert cached_file(m, sha256(data)).exists()
    assert f"aws/{RUNTIME}/{COMPRESSION}.zip alone is" in m.stderr()
    assert "more than cache_max 1 KiB" in m.stderr()
    assert read(aws) == data and builds(aws) == 1   # served from the cache

    read(gcp)
    assert state(aws) == "absent" and state(gcp) == "fresh"
    assert not cached_file(m, sha256(data)).exists()


@pytest.mark.parametrize("value", ["abc", "-5", "5X", "5MB", "1.5G", " 5", "",
                                   "99999999999T", "99999999999999999999"])
def test_bad_cache_max_is_a_one_line_error(tmp_path, value):
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'},cache_max={value}",
                   SUITE_SOURCE, "@MNT@")
    one_line_error(r, f"cache_max={value}:", "expected a size")


@pytest.mark.parametrize("value,nbytes", [("500M", 500 << 20), ("2g", 2 << 30),
                                          ("1048576", 1048576), ("0", 0)])
def test_cache_max_sizes(sebsfs, value, nbytes):
    m = sebsfs(options=("builder=host", f"cache_max={value}"))
    assert f"(cache_max {nbytes} bytes" in m.stderr()
    read(m.zip("openwhisk", RUNTIME, COMPRESSION))
    assert evictions(m) == []
