"""Failing builds: EIO on open, a readable log, and the old package is kept."""

import errno
import hashlib
import os

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, builds, log_text, open_errno,
                            read, sha256, state, xattr)

FAILING_INIT = """#!/bin/bash
echo "fetching the data set failed: boom-marker" >&2
exit 1
"""


def assert_failed(mount, platform, runtime, bench, expected_builds, marker=None):
    z = mount.zip(platform, runtime, bench)
    assert open_errno(z) == errno.EIO
    assert state(z) == "failed"
    assert builds(z) == expected_builds
    log = log_text(mount, platform, runtime, bench)
    assert "[sebsfs] build failed" in log, log
    if marker:
        assert marker in log, log
    return z


def test_failing_init_sh_gives_eio_and_keeps_old_package(mount, suite):
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    good = read(z)
    good_sha = sha256(good)
    init = suite / BENCH_DIRS[COMPRESSION] / "init.sh"
    original = init.read_text()
    init.write_text(FAILING_INIT)

    assert_failed(mount, "aws", "python-3.11", COMPRESSION, 2, "boom-marker")
    # still failing: still no package served
    assert open_errno(z) == errno.EIO
    kept = mount.cache / "packages" / f"{good_sha}.zip"
    assert kept.exists(), f"the previous good package {kept} must stay in the cache"
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == good_sha

    init.write_text(original)
    fixed = read(z)
    assert fixed == good
    assert state(z) == "fresh"
    assert xattr(z, "user.sebs.sha256") == good_sha


def test_failing_step_inside_init_without_set_e_fails(mount, suite):
    # bash -e: a failing command in the middle fails the build even though
    # the script's last command succeeds (the reference builder ships a
    # package silently missing its data in that case)
    init = suite / BENCH_DIRS[COMPRESSION] / "init.sh"
    init.write_text('#!/bin/bash\ncp -r "$(dirname "${BASH_SOURCE[0]}")/no-such-data" "$1/"\n'
                    'echo "data step done"\n')
    assert_failed(mount, "aws", "python-3.11", COMPRESSION, 1, "no-such-data")


def test_never_built_failure(mount, suite):
    lang_init = suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "init.sh"
    lang_init.write_text(FAILING_INIT)
    z = assert_failed(mount, "gcp", "python-3.11", DYNAMIC_HTML, 1, "boom-marker")
    assert xattr(z, "user.sebs.sha256") is None
    assert os.stat(z).st_size == 0
    # other packages are not affected
    ok = mount.zip("gcp", "python-3.11", COMPRESSION)
    assert len(read(ok)) > 0 and state(ok) == "fresh"


def test_failing_package_sh(mount, suite):
    (suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "package.sh").write_text(
        "echo package-sh-marker; exit 3\n")
    assert_failed(mount, "aws", "python-3.11", DYNAMIC_HTML, 1, "package-sh-marker")


def test_failing_pip_install(mount, suite):
    (suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "requirements.txt").write_text(
        "./wheels/missing_wheel_marker-1.0-py3-none-any.whl\n")
    assert_failed(mount, "aws", "python-3.11", DYNAMIC_HTML, 1, "missing_wheel_marker")


def test_failing_npm_install(mount, suite):
    pkg = suite / BENCH_DIRS[DYNAMIC_HTML] / "nodejs" / "package.json"
    pkg.write_text(pkg.read_text().replace("sebs-example-lib-1.0.0.tgz", "missing-lib-9.9.9.tgz"))
    assert_failed(mount, "aws", "nodejs-20", DYNAMIC_HTML, 1)
