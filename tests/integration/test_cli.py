"""Command line: help, version, and errors reported before mounting."""

import re

import pytest

from sebsfs_testlib import SOURCE_ROOT, SUITE_SOURCE, one_line_error, run_sebsfs


def project_version():
    text = (SOURCE_ROOT / "meson.build").read_text()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


def test_help(tmp_path):
    for flag in ("--help", "-h"):
        r = run_sebsfs(tmp_path, flag)
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        for word in ("cache=", "builder=", "jobs=", "arch=", "stat_builds"):
            assert word in out, (flag, word)


def test_version(tmp_path):
    for flag in ("-V", "--version"):
        r = run_sebsfs(tmp_path, flag)
        assert r.returncode == 0, r.stderr
        assert project_version() in r.stdout + r.stderr


def test_missing_root(tmp_path):
    missing = tmp_path / "no-such-sebs-root"
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'}", missing, "@MNT@")
    one_line_error(r, str(missing))


def test_root_is_a_file(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("not a tree\n")
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'}", f, "@MNT@")
    one_line_error(r, str(f))


def test_missing_systems_json(tmp_path):
    root = tmp_path / "root"
    (root / "benchmarks").mkdir(parents=True)
    (root / "configs").mkdir()
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'}", root, "@MNT@")
    one_line_error(r, "systems.json")


@pytest.mark.parametrize("option,word", [("builder=bogus", "builder"), ("arch=sparc", "arch"),
                                         ("jobs=lots", "jobs"), ("jobs=0", "jobs"),
                                         ("verify=sometimes", "verify"), ("scrub=-1", "scrub"),
                                         ("build_timeout=abc", "build_timeout"),
                                         ("cache_max=lots", "cache_max")])
def test_bad_option_values(tmp_path, option, word):
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'},{option}",
                   SUITE_SOURCE, "@MNT@")
    assert r.returncode == 1
    one_line_error(r, word)
    # refused before the cache folder is made
    assert not (tmp_path / "cache").exists()


def test_missing_mountpoint_argument(tmp_path):
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'}")
    assert r.returncode != 0
    assert r.stderr.strip()


def test_missing_or_bad_mountpoint(tmp_path):
    missing = tmp_path / "no-such-mnt"
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'}", SUITE_SOURCE, missing)
    one_line_error(r, "mount point", str(missing), "No such file or directory")
    a_file = tmp_path / "a-file"
    a_file.write_text("x\n")
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'}", SUITE_SOURCE, a_file)
    one_line_error(r, "mount point", str(a_file), "not a directory")


def test_unreadable_cache_dir_is_an_error(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be\n")
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={blocker / 'cache'}", SUITE_SOURCE, "@MNT@")
    assert r.returncode != 0
    assert "cache" in r.stderr.lower(), r.stderr
