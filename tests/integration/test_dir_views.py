"""Directory views: <platform>/<runtime>/<benchmark>/ beside each code package
shows the package's tree, built like an open of the zip, read from the cached
zip one entry at a time.  The oracle is Info-ZIP's unzip of the zip read
through the same mount."""

import errno
import os
import shutil
import stat
import subprocess
import threading
import zipfile

import pytest

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, SLEEP,
                            assert_view_equals_unzip, builds, entries_below, log_text,
                            one_line_error, read, run, run_sebsfs, sha256, state, view, xattr)

FAILING_INIT = "#!/bin/bash\necho 'view-build-marker failed' >&2\nexit 1\n"


def test_runtime_listing_shows_views_and_builds_nothing(mount):
    rt = mount.path("aws", "python-3.11")
    names = os.listdir(rt)
    assert DYNAMIC_HTML in names and COMPRESSION in names
    for bench in (DYNAMIC_HTML, COMPRESSION):
        st = os.stat(rt / bench)
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o555
        assert builds(rt / (bench + ".zip")) == 0
        assert state(rt / (bench + ".zip")) == "absent"
    # find over the whole tree stops at the view folders without building
    r = run(["find", str(mount.mnt), "-maxdepth", "3", "-type", "d"])
    assert r.returncode == 0
    assert str(rt / DYNAMIC_HTML) in r.stdout.splitlines()
    assert builds(rt / (DYNAMIC_HTML + ".zip")) == 0
    # an image-only runtime has no view (openwhisk java: no code package)
    ow = mount.path("openwhisk", "java-8")
    assert not any(stat.S_ISDIR(os.stat(ow / n).st_mode) for n in os.listdir(ow))


def test_listing_builds_once(mount):
    z = mount.zip("gcp", "python-3.11", DYNAMIC_HTML)
    v = view(mount, "gcp", "python-3.11", DYNAMIC_HTML)
    first = sorted(os.listdir(v))
    assert "function" in first, first
    assert builds(z) == 1
    assert sorted(os.listdir(v)) == first
    for dirpath, _, filenames in os.walk(v):
        for name in filenames:
            os.stat(os.path.join(dirpath, name))
    assert builds(z) == 1
    assert state(z) == "fresh"
    # the view serves the same package the zip is
    with zipfile.ZipFile(z) as zf:
        top = {n.split("/")[0] for n in zf.namelist()}
    assert set(first) == top


@pytest.mark.parametrize("platform,runtime,bench", [
    ("aws", "python-3.11", DYNAMIC_HTML),
    ("gcp", "nodejs-20", SLEEP),
    ("azure", "python-3.11", COMPRESSION),
    ("azure", "nodejs-18", DYNAMIC_HTML),
])
def test_cp_r_equals_unzip(mount, tmp_path, platform, runtime, bench):
    got = assert_view_equals_unzip(mount, tmp_path, platform, runtime, bench)
    if platform == "azure":
        # azure's layout has folders: the function's code in a handler folder
        assert any(kind == "dir" for kind, _, _ in got.values())
        assert any(os.sep in rel for rel in got)


def test_read_after_source_edit_serves_new_content(mount, suite):
    v = view(mount, "aws", "python-3.11", COMPRESSION)
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    handler = v / "function" / "function.py"
    old = read(handler)
    old_ino = os.stat(handler).st_ino
    assert os.stat(handler).st_ino == old_ino  # stable while the package does not change
    with open(handler, "rb") as held:
        src = suite / BENCH_DIRS[COMPRESSION] / "python" / "function.py"
        src.write_text(src.read_text() + "\n# view-edit-marker\n")
        new = read(handler)
        assert new != old and new.endswith(b"# view-edit-marker\n")
        assert builds(z) == 2
        # the handle opened before keeps its content
        assert held.read() == old
    assert os.stat(handler).st_ino != old_ino
    assert read(handler) == new
    with zipfile.ZipFile(z) as zf:
        assert zf.read("function/function.py") == new


def test_failed_build_gives_eio(mount, suite):
    v = view(mount, "aws", "python-3.11", COMPRESSION)
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    good = sorted(os.listdir(v))
    (suite / BENCH_DIRS[COMPRESSION] / "init.sh").write_text(FAILING_INIT)
    with pytest.raises(OSError) as e:
        os.listdir(v)
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        os.stat(v / "function" / "not-there")
    assert e.value.errno == errno.EIO
    assert state(z) == "failed"
    assert "view-build-marker" in log_text(mount, "aws", "python-3.11", COMPRESSION)
    # the view folder itself still stats, and the previous package is kept
    assert stat.S_ISDIR(os.stat(v).st_mode)
    (suite / BENCH_DIRS[COMPRESSION] / "init.sh").unlink()
    shutil.copy(os.path.join(os.environ.get("SEBSFS_SOURCE_ROOT", "."), "examples", "suite",
                             BENCH_DIRS[COMPRESSION], "init.sh"),
                suite / BENCH_DIRS[COMPRESSION] / "init.sh")
    assert sorted(os.listdir(v)) == good


def big_tree(suite):
    """A benchmark file of a few MB, generated (not stored in the repository)."""
    data = bytearray()
    x = 0x12345678
    while len(data) < 3 * 1024 * 1024 + 4321:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        data += (b"line %08x of the big file\n" % x) if x & 1 else x.to_bytes(4, "little") * 3
    # init.sh of 110.dynamic-html copies templates/ into the package
    path = suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "templates" / "big.bin"
    path.write_bytes(bytes(data))
    return bytes(data)


def test_pread_and_chunks_equal_zip(mount, suite):
    data = big_tree(suite)
    v = view(mount, "local", "python-3.11", DYNAMIC_HTML)
    z = mount.zip("local", "python-3.11", DYNAMIC_HTML)
    with zipfile.ZipFile(z) as zf:
        in_zip = zf.read("function/templates/big.bin")
    assert in_zip == data
    f = v / "function" / "templates" / "big.bin"
    assert os.stat(f).st_size == len(data)
    fd = os.open(f, os.O_RDONLY)
    try:
        got = bytearray()
        while True:
            chunk = os.read(fd, 65536 + 7)
            if not chunk:
                break
            got += chunk
        assert bytes(got) == data
        for off in (len(data) - 1, 0, 2 * 1024 * 1024 + 3, 17, 1024 * 1024, len(data) - 100000):
            assert os.pread(fd, 4096, off) == data[off:off + 4096], off
        assert os.pread(fd, 10, len(data)) == b""
    finally:
        os.close(fd)
    # through the page cache too, by another process
    r = subprocess.run(["cat", str(f)], capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout == data


def test_read_only(mount):
    v = view(mount, "aws", "python-3.11", DYNAMIC_HTML)
    names = os.listdir(v)
    f = next(v / n for n in names if os.path.isfile(v / n))
    for fn in (lambda: open(f, "ab"), lambda: open(v / "new.txt", "w"), lambda: os.unlink(f),
               lambda: os.mkdir(v / "d"), lambda: os.chmod(f, 0o777),
               lambda: os.rename(f, v / "x"), lambda: os.rmdir(v)):
        with pytest.raises(OSError) as e:
            fn()
        assert e.value.errno == errno.EROFS, fn  # as root: no permission check stops it
    assert os.stat(f).st_mode & 0o222 == 0


def test_odd_names(mount, suite):
    pydir = suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "templates"  # copied by init.sh
    odd = ["with space.txt", "unicod\u00e9 \u65e5\u672c.txt", "L" * 200 + ".txt"]
    (pydir / "sub dir").mkdir()
    for i, name in enumerate(odd):
        (pydir / "sub dir" / name).write_text(f"odd {i}\n")
    v = view(mount, "gcp", "python-3.10", DYNAMIC_HTML)
    assert sorted(os.listdir(v / "function" / "templates" / "sub dir")) == sorted(odd)
    for i, name in enumerate(odd):
        assert read(v / "function" / "templates" / "sub dir" / name) == f"odd {i}\n".encode()


def test_symlinks_in_view(mount, suite, tmp_path):
    pydir = suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "templates"  # copied by init.sh
    (pydir / "target.txt").write_text("linked\n")
    os.symlink("target.txt", pydir / "link.txt")
    v = view(mount, "aws", "python-3.10", DYNAMIC_HTML)
    assert os.readlink(v / "function" / "templates" / "link.txt") == "target.txt"
    assert read(v / "function" / "templates" / "link.txt") == b"linked\n"
    got = assert_view_equals_unzip(mount, tmp_path, "aws", "python-3.10", DYNAMIC_HTML)
    assert got[os.path.join("function", "templates", "link.txt")] == ("link", None, "target.txt")


def test_inode_numbers_stable_and_unique(mount):
    v = view(mount, "aws", "nodejs-18", DYNAMIC_HTML)
    first = {p: st.st_ino for _, p, st in entries_below(v)}
    assert len(set(first.values())) == len(first)
    for p, ino in first.items():
        assert os.lstat(p).st_ino == ino
    z = mount.zip("aws", "nodejs-18", DYNAMIC_HTML)
    assert builds(z) == 1
    sha = xattr(z, "user.sebs.sha256")
    assert sha == sha256(read(z))


def test_concurrent_listings_share_one_build(mount):
    v = view(mount, "local", "nodejs-20", DYNAMIC_HTML)
    results = []

    def lister():
        results.append(sorted(os.listdir(v)))

    threads = [threading.Thread(target=lister) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert builds(mount.zip("local", "nodejs-20", DYNAMIC_HTML)) == 1


def test_evicted_package_rebuilds_with_the_same_inodes(mount):
    v = view(mount, "aws", "python-3.11", DYNAMIC_HTML)
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    before = {rel: (st.st_ino, st.st_size) for rel, _, st in entries_below(v)}
    held = open(v / "function" / "function.py", "rb")
    os.unlink(z)  # evicts the package; the open file keeps reading
    assert state(z) == "absent"
    assert held.read() == read(mount.path("aws", "python-3.11", DYNAMIC_HTML, "function",
                                          "function.py"))
    held.close()
    assert builds(z) == 2
    # a reproducible rebuild: the same content, so the same inode numbers
    assert {rel: (st.st_ino, st.st_size) for rel, _, st in entries_below(v)} == before


def test_views_off_leaves_them_out_and_a_full_walk_builds_nothing(sebsfs):
    m = sebsfs(options=("builder=host", "views=off"))
    rt = m.path("aws", "python-3.11")
    names = os.listdir(rt)
    assert f"{DYNAMIC_HTML}.zip" in names and f"{DYNAMIC_HTML}.zip.log" in names
    assert DYNAMIC_HTML not in names
    assert not os.path.exists(rt / DYNAMIC_HTML)
    r = run(["find", str(m.mnt)])
    assert r.returncode == 0, r.stderr
    for path in r.stdout.splitlines():
        if path.endswith((".zip", ".jar")):
            assert builds(path) == 0, path
    # the zip itself is served as usual
    assert zipfile.ZipFile(rt / f"{DYNAMIC_HTML}.zip").testzip() is None


@pytest.mark.parametrize("value", ["maybe", "", "ON"])
def test_views_option_rejects_other_values(tmp_path, suite, value):
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'},views={value}",
                   suite, "@MNT@")
    one_line_error(r, f"views={value}:", "expected on or off")
