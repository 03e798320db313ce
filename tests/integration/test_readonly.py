"""Everything that writes, except unlink of a .zip, fails with EROFS."""

import errno
import os

import pytest

from sebsfs_testlib import COMPRESSION, builds, read, run, state


def erofs(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == errno.EROFS, (fn.__name__, args, e.value)


def test_write_attempts_fail_with_erofs(mount):
    d = mount.path("aws", "python-3.11")
    z = d / f"{COMPRESSION}.zip"
    log = d / f"{COMPRESSION}.zip.log"
    erofs(lambda: open(d / "new-file", "w"))
    erofs(lambda: open(mount.mnt / "new-file", "w"))
    erofs(lambda: open(z, "wb"))
    erofs(lambda: open(z, "r+b"))
    erofs(lambda: open(log, "a"))
    erofs(os.mkdir, d / "newdir")
    erofs(os.mkdir, mount.mnt / "newplatform")
    erofs(os.rmdir, d)
    erofs(os.rename, z, d / "renamed.zip")
    erofs(os.unlink, log)
    erofs(os.symlink, "target", d / "link")
    erofs(os.link, z, d / "hardlink.zip")
    erofs(os.chmod, z, 0o777)
    erofs(os.truncate, z, 0)
    erofs(os.utime, z, (0, 0))
    erofs(os.setxattr, z, "user.sebs.state", b"fresh")
    erofs(os.removexattr, z, "user.sebs.state")
    assert builds(z) == 0 and state(z) == "absent"


def test_shell_write_attempts_fail(mount):
    d = mount.path("aws", "python-3.11")
    z = d / f"{COMPRESSION}.zip"
    for argv in (["touch", str(d / "new")], ["mkdir", str(d / "dir")],
                 ["sh", "-c", 'echo x > "$1"', "sh", str(z)],
                 ["sh", "-c", 'echo x >> "$1"', "sh", str(d / "new2")]):
        r = run(argv, timeout=30)
        assert r.returncode != 0, argv
        assert "Read-only file system" in r.stderr, (argv, r.stderr)
    assert len(read(z)) > 0
