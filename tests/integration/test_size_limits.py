"""Size limits: every code package's unzipped size, a warning (or, with
size_limits=strict, EFBIG) for one past its platform's limit, and the
411.image-recognition case: a package that is under the limit only after its
package.sh strips the installed dependency.

The limits are lowered through -o size_limits_file= so that the packages stay
a few KB (tests/fixtures/size-limits holds the 411-shaped benchmark)."""

import errno
import json
import os
import shutil
import sqlite3
import stat
import subprocess

from sebsfs_testlib import (DYNAMIC_HTML, SOURCE_ROOT, builds, log_text, names, one_line_error,
                            open_errno, read, run_sebsfs, state, xattr, zip_of)

IMAGE_REC = "411.image-recognition"
FIXTURE = SOURCE_ROOT / "tests" / "fixtures" / "size-limits" / IMAGE_REC
RT = "python-3.11"
# The unstripped package unpacks to ~170 KB, the stripped one to ~26 KB.
UNZIPPED_LIMIT = 100 * 1024
LIMITS = {"aws": {"unzipped": "100 KiB"}}


def unzipped_sum(data):
    """The sum of the uncompressed sizes of the zip's regular files, as
    Python's zipfile reads its central directory (a Unix mode where one is
    recorded, else: not a folder)."""
    total = 0
    for info in zip_of(data).infolist():
        mode = info.external_attr >> 16
        if (stat.S_ISREG(mode) if stat.S_IFMT(mode) else not info.is_dir()):
            total += info.file_size
    return total


def unzip_total(path):
    """The total `unzip -Zl` prints on its last line."""
    r = subprocess.run(["unzip", "-Zl", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]          # "N files, B bytes uncompressed, ..."
    return int(last.split(",")[1].split()[0])


def add_411(suite):
    dst = suite / "benchmarks" / "400.inference" / IMAGE_REC
    shutil.copytree(FIXTURE, dst)
    return dst


def limits_file(tmp_path, limits, name="limits.json"):
    p = tmp_path / name
    p.write_text(json.dumps(limits))
    return p


def test_unzipped_size_of_every_built_zip(mount, tmp_path):
    z = mount.zip("aws", RT, DYNAMIC_HTML)
    assert xattr(z, "user.sebs.unzipped_size") is None      # never built: unknown
    data = read(z)
    copy = tmp_path / "copy.zip"
    copy.write_bytes(data)
    size = unzipped_sum(data)
    assert size > 0
    assert xattr(z, "user.sebs.unzipped_size") == str(size)
    assert unzip_total(copy) == size
    assert "user.sebs.unzipped_size" in os.listxattr(z)
    # far below aws's default limits (50 MiB / 250 MiB): no warning
    assert xattr(z, "user.sebs.size_warning") is None
    assert "user.sebs.size_warning" not in os.listxattr(z)
    log = log_text(mount, "aws", RT, DYNAMIC_HTML)
    assert f"[sebsfs] size: {len(data)} bytes zipped, {size} bytes unzipped\n" in log
    assert "size warning" not in log


def test_411_is_under_the_limit_only_after_package_sh(sebsfs, suite, tmp_path):
    bench = add_411(suite)
    package_sh = bench / "python" / "package.sh"
    saved = tmp_path / "package.sh"
    shutil.move(package_sh, saved)
    m = sebsfs(options=("builder=host", f"size_limits_file={limits_file(tmp_path, LIMITS)}"))
    z = m.zip("aws", RT, IMAGE_REC)

    # without the strip step: past the unzipped limit, zipped well under 50 MiB
    data = read(z)
    size = unzipped_sum(data)
    assert size >= UNZIPPED_LIMIT, size
    assert any("/tests/" in n for n in names(data))
    assert xattr(z, "user.sebs.unzipped_size") == str(size)
    warning = (f"aws size limit exceeded: zipped {len(data)} bytes (limit 52428800);"
               f" unzipped {size} bytes (limit {UNZIPPED_LIMIT}, exceeded)")
    assert xattr(z, "user.sebs.size_warning") == warning
    assert "user.sebs.size_warning" in os.listxattr(z)
    log = log_text(m, "aws", RT, IMAGE_REC)
    assert f"[sebsfs] size warning: {warning}\n" in log
    assert log.rstrip().splitlines()[-1].startswith("[sebsfs] build succeeded")
    # the limit is aws's only: the same package on azure has no warning
    az = m.zip("azure", RT, IMAGE_REC)
    read(az)
    assert int(xattr(az, "user.sebs.unzipped_size")) >= UNZIPPED_LIMIT
    assert xattr(az, "user.sebs.size_warning") is None

    # package.sh strips the dependency as SeBS's 411 strips torch: under the limit
    shutil.move(saved, package_sh)
    data = read(z)
    assert builds(z) == 2
    size = unzipped_sum(data)
    assert size < UNZIPPED_LIMIT, size
    assert not any("/tests/" in n or "/bin/" in n or n.endswith(".pyc") for n in names(data))
    assert any(n.endswith("sebs_example_model/__init__.py") for n in names(data))
    assert xattr(z, "user.sebs.unzipped_size") == str(size)
    assert xattr(z, "user.sebs.size_warning") is None
    log = log_text(m, "aws", RT, IMAGE_REC)
    assert "Stripped size" in log
    assert "size warning" not in log and "size limit" not in log


def test_zipped_limit(sebsfs, tmp_path):
    limits = limits_file(tmp_path, {"gcp": {"zipped": 1000}})
    m = sebsfs(options=("builder=host", f"size_limits_file={limits}"))
    z = m.zip("gcp", RT, DYNAMIC_HTML)
    data = read(z)
    assert len(data) >= 1000
    size = unzipped_sum(data)
    warning = (f"gcp size limit exceeded: zipped {len(data)} bytes (limit 1000, exceeded);"
               f" unzipped {size} bytes (limit 500000000)")
    assert xattr(z, "user.sebs.size_warning") == warning
    assert f"[sebsfs] size warning: {warning}\n" in log_text(m, "gcp", RT, DYNAMIC_HTML)
    # other platforms keep their defaults
    a = m.zip("aws", RT, DYNAMIC_HTML)
    read(a)
    assert xattr(a, "user.sebs.size_warning") is None


def test_strict_refuses_with_efbig_and_keeps_the_package(sebsfs, suite, tmp_path):
    bench = add_411(suite)
    (bench / "python" / "package.sh").unlink()
    limits = limits_file(tmp_path, LIMITS)
    cache = tmp_path / "cache"
    m = sebsfs(cache=cache, options=("builder=host", "size_limits=strict",
                                     f"size_limits_file={limits}"))
    z = m.zip("aws", RT, IMAGE_REC)
    assert open_errno(z) == errno.EFBIG
    # built and cached all the same
    assert state(z) == "fresh"
    assert builds(z) == 1
    sha = xattr(z, "user.sebs.sha256")
    warning = xattr(z, "user.sebs.size_warning")
    assert warning and f"(limit {UNZIPPED_LIMIT}, exceeded)" in warning
    log = log_text(m, "aws", RT, IMAGE_REC)
    assert (f"[sebsfs] size limit: {warning}; the package is cached, but opening it fails"
            f" with EFBIG (File too large) under size_limits=strict\n") in log
    # a cache hit is refused too, without a build
    assert open_errno(z) == errno.EFBIG
    assert builds(z) == 1
    # a package under its limit opens as ever
    assert read(m.zip("aws", RT, DYNAMIC_HTML))
    assert not m.stop(), m.stderr()

    # a later mount without strict serves the cached package
    m2 = sebsfs(cache=cache, options=("builder=host", f"size_limits_file={limits}"))
    z2 = m2.zip("aws", RT, IMAGE_REC)
    data = read(z2)
    assert builds(z2) == 0
    assert xattr(z2, "user.sebs.sha256") == sha
    assert xattr(z2, "user.sebs.size_warning") == warning
    assert unzipped_sum(data) >= UNZIPPED_LIMIT


def test_strict_held_handle_keeps_its_package(sebsfs, suite, tmp_path):
    """A reader that opened the package while it was under the limit reads
    it whole after a rebuild went over; new opens fail with EFBIG."""
    bench = add_411(suite)
    limits = limits_file(tmp_path, LIMITS)
    m = sebsfs(options=("builder=host", "size_limits=strict", f"size_limits_file={limits}"))
    z = m.zip("aws", RT, IMAGE_REC)
    before = read(z)
    assert unzipped_sum(before) < UNZIPPED_LIMIT
    with open(z, "rb") as held:
        (bench / "python" / "package.sh").unlink()
        assert open_errno(z) == errno.EFBIG
        assert builds(z) == 2
        assert held.read() == before


def test_off_checks_nothing_but_still_records_the_size(sebsfs, suite, tmp_path):
    bench = add_411(suite)
    (bench / "python" / "package.sh").unlink()
    limits = limits_file(tmp_path, LIMITS)
    m = sebsfs(options=("builder=host", "size_limits=off", f"size_limits_file={limits}"))
    z = m.zip("aws", RT, IMAGE_REC)
    data = read(z)
    assert xattr(z, "user.sebs.unzipped_size") == str(unzipped_sum(data))
    assert unzipped_sum(data) >= UNZIPPED_LIMIT
    assert xattr(z, "user.sebs.size_warning") is None
    assert "size warning" not in log_text(m, "aws", RT, IMAGE_REC)


def test_bad_limits_are_refused_before_mounting(tmp_path):
    bad = tmp_path / "bad.json"
    missing = tmp_path / "missing.json"
    cases = [
        ('{"aws": {"zipped": "50 mb"}}', f"size_limits_file={bad}",
         f"size_limits_file={bad}: aws.zipped: expected bytes"),
        ('{"aws": {"zipped": 1},', f"size_limits_file={bad}", f"size_limits_file={bad}: line 1"),
        ('{"aws": {"gzipped": 1}}', f"size_limits_file={bad}", "aws.gzipped: unknown"),
        (None, f"size_limits_file={missing}",
         f"size_limits_file={missing}: No such file or directory"),
        (None, "size_limits=loud", "size_limits=loud: expected warn, strict or off"),
    ]
    for text, option, says in cases:
        if text is not None:
            bad.write_text(text)
        r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path}/c,{option}", "@MNT@")
        one_line_error(r, says)


def test_remount_keeps_the_xattrs_without_building(sebsfs, suite, tmp_path):
    bench = add_411(suite)
    (bench / "python" / "package.sh").unlink()
    limits = limits_file(tmp_path, LIMITS)
    cache = tmp_path / "cache"
    opts = ("builder=host", f"size_limits_file={limits}")
    m = sebsfs(cache=cache, options=opts)
    z = m.zip("aws", RT, IMAGE_REC)
    read(z)
    size = xattr(z, "user.sebs.unzipped_size")
    warning = xattr(z, "user.sebs.size_warning")
    assert size and warning
    assert not m.stop(), m.stderr()

    m2 = sebsfs(cache=cache, options=opts)
    z2 = m2.zip("aws", RT, IMAGE_REC)
    assert xattr(z2, "user.sebs.unzipped_size") == size
    assert xattr(z2, "user.sebs.size_warning") == warning
    assert builds(z2) == 0
    assert state(z2) == "fresh"
    assert not m2.stop(), m2.stderr()

    # a cache written before size limits (schema v4: no unzipped_size column,
    # nor v6's origin) learns the size from the package file, still without
    # a build
    db = sqlite3.connect(cache / "sebsfs.db")
    db.execute("ALTER TABLE packages DROP COLUMN unzipped_size")
    db.execute("ALTER TABLE packages DROP COLUMN origin")
    db.execute("PRAGMA user_version = 4")
    db.commit()
    db.close()
    m3 = sebsfs(cache=cache, options=opts)
    z3 = m3.zip("aws", RT, IMAGE_REC)
    assert xattr(z3, "user.sebs.unzipped_size") == size
    assert xattr(z3, "user.sebs.size_warning") == warning
    assert builds(z3) == 0
    assert state(z3) == "fresh"
    assert not m3.stop(), m3.stderr()
    db = sqlite3.connect(cache / "sebsfs.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 6
    assert db.execute("SELECT unzipped_size FROM packages WHERE benchmark = ? AND kind = 'zip'"
                      " AND platform = 'aws'", (IMAGE_REC,)).fetchone()[0] == int(size)
    db.close()
