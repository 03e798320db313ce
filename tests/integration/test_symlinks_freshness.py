"""Symlinks never leak host files into a package; special files and loops
fail the build; a same-size edit that keeps the mtime is rebuilt.

The walker's policy (src/common/walk.h): inputs and copies follow a symlink
only to somewhere inside the benchmark (or wrapper) folder; the work folder
that is zipped keeps links as links, and only links that stay inside it.
Every refusal fails the build: EIO on open, state `failed`, and the log
names the link and its target.
"""

import errno
import os
import stat
import time

import pytest

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, append, builds, edit_json, log_text,
                            member, names, open_errno, read, state, xattr, zip_of)

SECRET = "host-secret-marker-7f3a9c"   # content of a host file outside the suite
RACY_SLACK = 2.0                        # INPUTS_RACY_SLACK_NS of src/builder/inputs.h


def python_dir(suite):
    return suite / BENCH_DIRS[DYNAMIC_HTML] / "python"


def host_secret(tmp_path):
    """A host file outside the suite copy (tmp_path/suite)."""
    secret = tmp_path / "host-secret.txt"
    secret.write_text(SECRET + "\n")
    return secret


def assert_refused(mount, platform, runtime, bench, *words):
    """The package's open fails with EIO, its state is `failed`, and its log
    ends in a failure that contains every one of words."""
    z = mount.zip(platform, runtime, bench)
    assert open_errno(z) == errno.EIO
    assert state(z) == "failed"
    log = log_text(mount, platform, runtime, bench)
    failure = [line for line in log.splitlines() if line.startswith("[sebsfs] build failed")]
    assert failure, log
    for w in words:
        assert w in failure[-1], f"{w!r} not in {failure[-1]!r}\n{log}"
    return z


def assert_never_served(mount, secret_text):
    """No package published in the cache contains secret_text."""
    for pkg in (mount.cache / "packages").glob("*.zip"):
        zf = zip_of(pkg.read_bytes())
        for info in zf.infolist():
            assert secret_text.encode() not in zf.read(info), f"{pkg}: {info.filename}"


# ---- (1) code symlinks to host files

@pytest.mark.parametrize("kind", ["absolute", "relative", "etc-hostname"])
def test_code_symlink_out_of_benchmark_fails_build(mount, suite, tmp_path, kind):
    secret = host_secret(tmp_path)
    pydir = python_dir(suite)
    target = {"absolute": str(secret),
              "relative": os.path.relpath(secret, pydir),   # ../../../../host-secret.txt
              "etc-hostname": "/etc/hostname"}[kind]
    os.symlink(target, pydir / "leak.py")

    assert_refused(mount, "aws", "python-3.11", DYNAMIC_HTML,
                   f"{BENCH_DIRS[DYNAMIC_HTML]}/python/leak.py -> {target} points outside")
    assert xattr(mount.zip("aws", "python-3.11", DYNAMIC_HTML), "user.sebs.sha256") is None
    # the other language of the same benchmark does not read python/
    assert len(read(mount.zip("aws", "nodejs-20", DYNAMIC_HTML))) > 0
    assert_never_served(mount, SECRET)


def test_code_symlink_inside_benchmark_is_followed(mount, suite):
    # a link that stays in the benchmark folder is an ordinary input: its
    # target's content is copied (and hashed) under the link's name
    pydir = python_dir(suite)
    os.symlink("function.py", pydir / "alias.py")
    data = read(mount.zip("aws", "python-3.11", DYNAMIC_HTML))
    assert member(data, "function/alias.py") == (pydir / "function.py").read_bytes()


# ---- (2) links that init.sh leaves in the work folder

@pytest.mark.parametrize("target", ["/etc/hostname", "../../etc/hostname"])
def test_init_sh_link_out_of_package_fails_build(mount, suite, target):
    append(python_dir(suite) / "init.sh", f'ln -s "{target}" "$1/leak.txt"\n')
    assert_refused(mount, "aws", "python-3.11", DYNAMIC_HTML,
                   f"function/leak.txt -> {target} points outside")


def test_init_sh_link_inside_package_is_kept_as_link(mount, suite):
    append(python_dir(suite) / "init.sh",
           'ln -s function.py "$1/alias.py"\nln -s ../templates "$1/templates/self"\n')
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    data = read(z)
    assert state(z) == "fresh"
    zf = zip_of(data)
    for name, target in (("function/alias.py", b"function.py"),
                         ("function/templates/self", b"../templates")):
        info = zf.getinfo(name)
        assert stat.S_ISLNK(info.external_attr >> 16), f"{name}: {oct(info.external_attr >> 16)}"
        assert zf.read(info) == target


# ---- (3) loops and special files in the benchmark folder

def make_cycle(pydir):
    os.symlink("loop-b.py", pydir / "loop-a.py")
    os.symlink("loop-a.py", pydir / "loop-b.py")
    return "python/loop-a.py -> loop-b.py: a loop of symlinks"


def make_ancestor_loop(pydir):
    os.symlink("..", pydir / "templates" / "up")
    return "python/templates/up -> .. is a loop"


def make_fifo(pydir):
    # where no build step copies it: only the input walk can notice it
    os.mkfifo(pydir / "data.pipe")
    return "python/data.pipe is a FIFO"


@pytest.mark.parametrize("make", [make_cycle, make_ancestor_loop, make_fifo],
                         ids=["cycle", "ancestor", "fifo"])
def test_loops_and_fifos_fail_build(mount, suite, make):
    words = make(python_dir(suite))
    assert_refused(mount, "aws", "python-3.11", DYNAMIC_HTML, words)
    # fixed, it builds
    for folder, dirs, files in os.walk(python_dir(suite)):
        for name in dirs + files:
            p = os.path.join(folder, name)
            if stat.S_ISLNK(os.lstat(p).st_mode) or stat.S_ISFIFO(os.lstat(p).st_mode):
                os.unlink(p)
    assert len(read(mount.zip("aws", "python-3.11", DYNAMIC_HTML))) > 0


# ---- (4) symlinked folders pointing outside

@pytest.fixture
def outside_dir(tmp_path):
    """A host folder outside the suite, with a file and a FIFO in it: walking
    it would hash the file, reading the FIFO would hang."""
    d = tmp_path / "outside-docs"
    d.mkdir()
    (d / "secret.txt").write_text(SECRET + "\n")
    os.mkfifo(d / "pipe")
    return d


def test_symlinked_folder_out_of_benchmark_is_not_walked(mount, suite, outside_dir):
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    read(z)
    good_hash = xattr(z, "user.sebs.input_hash")
    os.symlink(outside_dir, python_dir(suite) / "docs")

    assert_refused(mount, "aws", "python-3.11", DYNAMIC_HTML,
                   f"python/docs -> {outside_dir} points outside {BENCH_DIRS[DYNAMIC_HTML]}")
    log = log_text(mount, "aws", "python-3.11", DYNAMIC_HTML)
    assert "secret.txt" not in log and "pipe" not in log
    # what the link leads to is not an input: editing it changes nothing
    (outside_dir / "secret.txt").write_text("edited\n")
    assert_refused(mount, "aws", "python-3.11", DYNAMIC_HTML, "python/docs -> ")
    assert xattr(z, "user.sebs.input_hash") == good_hash
    assert_never_served(mount, SECRET)


def test_symlinked_wrapper_folder_out_of_wrappers_is_refused(mount, suite, outside_dir):
    # a wrapper folder listed in deployment.files that links out of the
    # wrappers folder is neither hashed nor copied
    wrappers = suite / "benchmarks" / "wrappers" / "aws" / "python"
    os.symlink(outside_dir, wrappers / "docs")
    edit_json(suite / "configs" / "systems.json",
              lambda d: d["aws"]["languages"]["python"]["deployment"]["files"].append("docs"))
    assert_refused(mount, "aws", "python-3.11", DYNAMIC_HTML,
                   f"wrappers/aws/python/docs -> {outside_dir} points outside")
    assert_never_served(mount, SECRET)


# ---- (5) freshness: ctime and the racy rule

def test_same_size_edit_with_restored_mtime_rebuilds(mount, suite):
    f = python_dir(suite) / "function.py"
    # An old mtime and a ctime older than RACY_SLACK before the first check:
    # the first manifest trusts this file's stat, so only the stat key can
    # notice the edit below (not the racy-timestamp rule).
    hour = 3600 * 10**9
    st = os.stat(f)
    os.utime(f, ns=(st.st_atime_ns - hour, st.st_mtime_ns - hour))
    time.sleep(RACY_SLACK + 0.5)
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    old = read(z)
    assert builds(z) == 1

    before = os.stat(f)
    text = f.read_bytes()
    edited = text.replace(b"import random", b"import RANDOM", 1)
    assert edited != text and len(edited) == len(text)
    f.write_bytes(edited)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))   # like cp -p / touch -r
    after = os.stat(f)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)

    new = read(z)
    assert builds(z) == 2, "a same-size edit with the old mtime was served stale"
    assert member(new, "function/function.py") == edited
    assert member(old, "function/function.py") == text
    assert "function/function.py" in names(new)
