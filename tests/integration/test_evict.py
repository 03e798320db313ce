"""rm evicts a package; rebuilds are reproducible (byte-identical)."""

import errno
import os

import pytest

from sebsfs_testlib import COMPRESSION, DYNAMIC_HTML, builds, read, sha256, state, xattr

CASES = [("aws", "python-3.11", DYNAMIC_HTML), ("aws", "nodejs-20", DYNAMIC_HTML),
         ("local", "python-3.10", COMPRESSION), ("azure", "python-3.10", DYNAMIC_HTML)]


def test_rm_evicts_and_name_stays(mount):
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    first = read(z)
    os.unlink(z)
    assert z.name in os.listdir(z.parent)
    assert state(z) == "absent"
    assert xattr(z, "user.sebs.sha256") is None
    assert builds(z) == 1
    assert read(z) == first
    assert builds(z) == 2 and state(z) == "fresh"


def test_rm_of_log_and_of_never_built_package(mount):
    with pytest.raises(OSError) as e:
        os.unlink(mount.log("aws", "python-3.11", COMPRESSION))
    assert e.value.errno == errno.EROFS
    z = mount.zip("gcp", "python-3.11", COMPRESSION)
    try:
        os.unlink(z)
    except OSError as err:  # nothing to evict: either outcome is fine, but no build
        assert err.errno == errno.ENOENT
    assert builds(z) == 0 and z.name in os.listdir(z.parent)


@pytest.mark.parametrize("platform,runtime,bench", CASES)
def test_evict_and_rebuild_is_reproducible(mount, platform, runtime, bench):
    z = mount.zip(platform, runtime, bench)
    first = read(z)
    sha = xattr(z, "user.sebs.sha256")
    assert sha == sha256(first)
    os.unlink(z)
    second = read(z)
    assert builds(z) == 2
    assert xattr(z, "user.sebs.sha256") == sha
    assert second == first


def test_independent_caches_build_identical_zips(sebsfs, tmp_path):
    a = sebsfs(cache=tmp_path / "cache-a")
    b = sebsfs(cache=tmp_path / "cache-b")
    for rel in (("aws", "python-3.11", DYNAMIC_HTML), ("gcp", "nodejs-20", DYNAMIC_HTML)):
        assert read(a.zip(*rel)) == read(b.zip(*rel)), rel
