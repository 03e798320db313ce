"""One inode per content: a package whose inputs change while a reader holds
it open is served to later openers on a new inode, the way a local file
replaced by rename is.  The kernel's page cache and size are per inode; when
both contents were served on one inode, the old reader's reads were cut at
the new size and filled the cache with old pages that the new readers then
read (not a zip).  (Eviction and byte-identical rebuilds keep the inode.)"""

import os
import random
import threading
import time

import pytest

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, builds, read, sha256, with_timeout, xattr,
                            zip_of)

CHUNK = 1 << 16


def big_package_suite(suite):
    """Makes 311.compression's package span many pages (its init.sh copies
    resources/ into the package): incompressible bytes."""
    res = suite / BENCH_DIRS[COMPRESSION] / "resources"
    (res / "noise.bin").write_bytes(random.Random(7).randbytes(3 << 20))
    return res / "lorem.txt"


def mount_compression(sebsfs, suite):
    lorem = big_package_suite(suite)
    m = sebsfs(options=("builder=none",))
    return m, m.zip("aws", "python-3.11", COMPRESSION), lorem


def read_fd(fd, start=0, limit=None, pause=0.0):
    """Reads fd from start through the page cache (pread), to its end or
    limit bytes."""
    out = bytearray()
    while limit is None or len(out) < limit:
        want = CHUNK if limit is None else min(CHUNK, limit - len(out))
        b = os.pread(fd, want, start + len(out))
        if not b:
            break
        out += b
        if pause:
            time.sleep(pause)
    return bytes(out)


def whole(fd):
    return with_timeout(lambda: read_fd(fd), what="reading a package descriptor")


def edit(lorem, grow):
    lorem.write_text(("a longer text for the new package " * 4000) if grow else "short\n")


def check_new(z, data, what):
    assert sha256(data) == xattr(z, "user.sebs.sha256"), f"{what}: not the package of the path"
    assert zip_of(data).testzip() is None, f"{what}: not a valid zip"
    assert zip_of(data).read("function/resources/lorem.txt") != b"", what


@pytest.mark.parametrize("grow", [False, True], ids=["smaller", "larger"])
@pytest.mark.parametrize("order", ["old-reader-first", "new-reader-first", "old-reader-partly-before"])
def test_old_reader_and_new_reader_each_read_their_whole_package(sebsfs, suite, order, grow):
    m, z, lorem = mount_compression(sebsfs, suite)
    old = read(z)
    a = os.open(z, os.O_RDONLY)
    try:
        assert xattr(z, "user.sebs.sha256") == sha256(old)
        a_before = read_fd(a, limit=len(old) // 3) if order == "old-reader-partly-before" else b""
        edit(lorem, grow)
        b = os.open(z, os.O_RDONLY)   # the new package; A still holds the old one
        try:
            if order == "new-reader-first":
                new_b = whole(b)
                a_data = whole(a)
            else:
                a_data = a_before + with_timeout(lambda: read_fd(a, start=len(a_before)))
                new_b = whole(b)
            assert len(a_data) == len(old), "the old reader's reads were cut"
            assert a_data == old, "the old reader read other bytes than its package"
            assert len(new_b) != len(old)
            check_new(z, new_b, "the new reader")
            # the old descriptor still describes its own content
            assert os.fstat(a).st_size == len(old)
            assert os.getxattr(a, "user.sebs.sha256").decode() == sha256(old)
            assert whole(a) == old, "re-reading the old descriptor"
        finally:
            os.close(b)
        c = read(z)
        assert c == new_b, "a later reader got other bytes than the new reader"
        assert whole(a) == old, "after a later reader"
    finally:
        os.close(a)
    assert read(z) == new_b
    assert os.stat(z).st_size == len(new_b)


def test_new_content_gets_a_new_inode_and_same_content_keeps_it(sebsfs, suite):
    m, z, lorem = mount_compression(sebsfs, suite)
    old = read(z)
    ino = os.stat(z).st_ino
    # no handle open: a rebuild with other content keeps the inode
    edit(lorem, grow=False)
    second = read(z)
    assert second != old
    assert os.stat(z).st_ino == ino
    # a handle open: eviction and a byte-identical rebuild keep the inode
    a = os.open(z, os.O_RDONLY)
    try:
        os.unlink(z)
        assert read(z) == second
        assert builds(z) >= 3
        assert os.stat(z).st_ino == ino == os.fstat(a).st_ino
        # other content while a handle is open: a new inode for the name
        edit(lorem, grow=True)
        b = os.open(z, os.O_RDONLY)
        try:
            assert os.fstat(a).st_ino == ino
            assert os.fstat(b).st_ino != ino
            assert os.stat(z).st_ino == os.fstat(b).st_ino
            assert whole(a) == second
            check_new(z, whole(b), "the new reader")
        finally:
            os.close(b)
        # the name is listed once, as the new inode
        listed = [e for e in os.scandir(z.parent) if e.name == z.name]
        assert len(listed) == 1 and listed[0].inode() == os.stat(z).st_ino
    finally:
        os.close(a)


def test_many_old_readers_and_many_new_readers(sebsfs, suite):
    m, z, lorem = mount_compression(sebsfs, suite)
    old = read(z)
    holders = [os.open(z, os.O_RDONLY) for _ in range(8)]
    results, errors = {}, []
    started = threading.Barrier(8 + 1)

    def slow_old_reader(k, fd):
        try:
            started.wait()
            results[("old", k)] = read_fd(fd, pause=0.02)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(repr(e))

    def new_reader(k):
        try:
            with open(z, "rb") as f:
                results[("new", k)] = f.read()
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(repr(e))

    old_threads = [threading.Thread(target=slow_old_reader, args=(k, fd), daemon=True)
                   for k, fd in enumerate(holders)]
    for t in old_threads:
        t.start()
    try:
        edit(lorem, grow=False)
        started.wait()
        new_threads = [threading.Thread(target=new_reader, args=(k,), daemon=True)
                       for k in range(8)]
        for t in new_threads:
            t.start()
        for t in old_threads + new_threads:
            t.join(180)
        assert not any(t.is_alive() for t in old_threads + new_threads), "a reader hung"
    finally:
        for fd in holders:
            os.close(fd)
    assert not errors, errors
    new = read(z)
    check_new(z, new, "after")
    for k in range(8):
        assert results[("old", k)] == old, f"old reader {k}"
        assert results[("new", k)] == new, f"new reader {k}"


def test_each_of_three_contents_held_at_once_reads_whole(sebsfs, suite):
    m, z, lorem = mount_compression(sebsfs, suite)
    fds, contents = [], []
    try:
        for k, text in enumerate(["first\n", "the second text\n" * 50, "3\n"]):
            lorem.write_text(text)
            contents.append(read(z))
            fds.append(os.open(z, os.O_RDONLY))
            assert len({os.fstat(fd).st_ino for fd in fds}) == k + 1
        assert len({sha256(c) for c in contents}) == 3
        for fd, data in zip(reversed(fds), reversed(contents)):
            assert whole(fd) == data
            assert os.getxattr(fd, "user.sebs.sha256").decode() == sha256(data)
        assert read(z) == contents[-1]
        assert os.stat(z).st_ino == os.fstat(fds[-1]).st_ino
    finally:
        for fd in fds:
            os.close(fd)
    check_new(z, read(z), "after")
