"""The tree follows the SeBS tree while mounted: benchmarks added, removed,
renamed or broken, platforms and runtimes added to systems.json.  sebsfs
polls the tree once a second; every test gives a change TREE_DELAY seconds to
show (a generous bound, not a timing assertion)."""

import errno
import json
import os
import shutil

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, PLATFORMS, SLEEP, builds,
                            edit_json, names, open_errno, read, state, wait_for)

TREE_DELAY = 10.0


def listing(m, *parts):
    try:
        return set(os.listdir(m.path(*parts)))
    except FileNotFoundError:
        return set()


def shows(m, parts, name):
    return wait_for(lambda: name in listing(m, *parts), TREE_DELAY)


def hides(m, parts, name):
    return wait_for(lambda: name not in listing(m, *parts), TREE_DELAY)


def all_runtime_folders(m):
    for platform in PLATFORMS:
        for rt in os.listdir(m.path(platform)):
            yield platform, rt


def test_added_benchmark_appears_and_builds(mount, suite):
    src = suite / BENCH_DIRS[COMPRESSION]
    shutil.copytree(src, src.parent / "312.compression-copy")
    assert shows(mount, ("aws", "python-3.11"), "312.compression-copy.zip"), \
        listing(mount, "aws", "python-3.11")
    assert {"312.compression-copy.zip", "312.compression-copy.zip.log",
            "312.compression-copy.image", "312.compression-copy.image.log"} <= \
        listing(mount, "aws", "python-3.11")
    assert "312.compression-copy.image" not in listing(mount, "azure", "python-3.11")
    assert "312.compression-copy.zip" not in listing(mount, "aws", "nodejs-20")  # python only
    z = mount.zip("aws", "python-3.11", "312.compression-copy")
    assert "function/function.py" in names(read(z))
    assert builds(z) == 1 and state(z) == "fresh"


def test_added_group_appears(mount, suite):
    dst = suite / "benchmarks" / "400.new-group" / "410.sleepy"
    shutil.copytree(suite / BENCH_DIRS[SLEEP], dst)
    assert shows(mount, ("gcp", "nodejs-20"), "410.sleepy.zip")


def test_removed_benchmark_goes_and_comes_back_from_the_cache(mount, suite, tmp_path):
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    data = read(z)
    ino = os.stat(z).st_ino
    cached = sorted(p.name for p in (mount.cache / "packages").rglob("*.zip"))
    assert cached

    away = tmp_path / "away"
    shutil.move(suite / BENCH_DIRS[COMPRESSION], away)
    assert hides(mount, ("aws", "python-3.11"), COMPRESSION + ".zip")
    assert COMPRESSION + ".zip.log" not in listing(mount, "aws", "python-3.11")
    assert not os.path.exists(z)
    assert open_errno(z) == errno.ENOENT
    # other packages are untouched
    assert DYNAMIC_HTML + ".zip" in listing(mount, "aws", "python-3.11")
    # its package stays in the cache
    assert sorted(p.name for p in (mount.cache / "packages").rglob("*.zip")) == cached

    shutil.move(away, suite / BENCH_DIRS[COMPRESSION])
    assert shows(mount, ("aws", "python-3.11"), COMPRESSION + ".zip")
    assert os.stat(z).st_ino == ino
    assert read(z) == data
    assert builds(z) == 1, "served from the cache, not rebuilt"
    assert state(z) == "fresh"


def test_renamed_benchmark(mount, suite):
    old = suite / BENCH_DIRS[SLEEP]
    os.rename(old, old.parent / "011.nap")
    assert shows(mount, ("aws", "nodejs-20"), "011.nap.zip")
    assert hides(mount, ("aws", "nodejs-20"), SLEEP + ".zip")
    z = mount.zip("aws", "nodejs-20", "011.nap")
    assert "function/function.js" in names(read(z))


def test_invalid_config_shows_a_log_and_the_rest_is_served(mount, suite):
    keep = mount.zip("aws", "nodejs-20", SLEEP)
    keep_data = read(keep)
    keep_ino = os.stat(keep).st_ino
    bench_zip = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    bench_ino = os.stat(bench_zip).st_ino

    cfg = suite / BENCH_DIRS[DYNAMIC_HTML] / "config.json"
    good = cfg.read_text()
    cfg.write_text('{\n  "timeout": 10,\n  "languages": ["python", "nodejs"\n}\n')
    log_name = DYNAMIC_HTML + ".log"
    assert shows(mount, ("aws", "python-3.11"), log_name)
    for platform, rt in all_runtime_folders(mount):
        assert wait_for(lambda: log_name in listing(mount, platform, rt), TREE_DELAY), (platform, rt)
        files = listing(mount, platform, rt)
        assert not any(f.startswith(tuple(DYNAMIC_HTML + s for s in (".zip", ".jar", ".image")))
                       for f in files), (platform, rt, files)
    text = read(mount.path("gcp", "nodejs-18", log_name)).decode()
    assert f"{cfg}: line 4 column 1:" in text, text
    assert "']' expected" in text, text
    assert "not served until its config.json is fixed" in text
    assert os.stat(mount.path("gcp", "nodejs-18", log_name)).st_size == len(text.encode())
    assert open_errno(bench_zip) == errno.ENOENT
    # the rest is served: same inode, same bytes
    assert os.stat(keep).st_ino == keep_ino
    assert read(keep) == keep_data
    assert COMPRESSION + ".zip" in listing(mount, "aws", "python-3.11")
    assert f"{cfg}: line 4 column 1" in mount.stderr()

    # a different mistake: the .log says so
    cfg.write_text('{"languages": 5}\n')
    log = mount.path("aws", "python-3.11", log_name)
    assert wait_for(lambda: b'"languages" is not an array' in read(log), TREE_DELAY), read(log)

    cfg.write_text(good)
    assert shows(mount, ("aws", "python-3.11"), DYNAMIC_HTML + ".zip")
    assert hides(mount, ("aws", "python-3.11"), log_name)
    assert os.stat(bench_zip).st_ino == bench_ino
    assert "function/function.py" in names(read(bench_zip))


def test_platform_and_runtime_added_to_systems_json(mount, suite):
    sysfile = suite / "configs" / "systems.json"
    before_ino = os.stat(mount.zip("aws", "python-3.11", DYNAMIC_HTML)).st_ino

    def add(data):
        data["newcloud"] = json.loads(json.dumps(data["local"]))
        data["aws"]["languages"]["python"]["base_images"]["x64"]["3.12"] = "python:3.12-slim"
    edit_json(sysfile, add)
    assert shows(mount, (), "newcloud")
    assert wait_for(lambda: {"python-3.10", "python-3.11", "nodejs-18", "nodejs-20"}
                    <= listing(mount, "newcloud"), TREE_DELAY), listing(mount, "newcloud")
    assert {DYNAMIC_HTML + ".zip", COMPRESSION + ".zip"} <= listing(mount, "newcloud", "python-3.11")
    assert shows(mount, ("aws",), "python-3.12")
    assert DYNAMIC_HTML + ".zip" in listing(mount, "aws", "python-3.12")
    assert state(mount.zip("newcloud", "python-3.11", DYNAMIC_HTML)) == "absent"
    assert os.stat(mount.zip("aws", "python-3.11", DYNAMIC_HTML)).st_ino == before_ino

    def remove(data):
        del data["newcloud"]
    edit_json(sysfile, remove)
    assert hides(mount, (), "newcloud")
    assert not os.path.exists(mount.path("newcloud", "python-3.11"))


def test_broken_systems_json_keeps_the_tree(mount, suite):
    sysfile = suite / "configs" / "systems.json"
    good = sysfile.read_text()
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    data = read(z)
    sysfile.write_text(good[:len(good) // 2])
    assert wait_for(lambda: "still serving the tree as it was" in mount.stderr(), TREE_DELAY), \
        mount.stderr()
    assert f"{sysfile}: " in mount.stderr()
    assert set(os.listdir(mount.mnt)) == set(PLATFORMS)
    assert os.stat(z).st_size == len(data)
    # systems.json is an input of every package: reading one fails and says why
    assert open_errno(z) == errno.EIO
    log = read(mount.log("aws", "python-3.11", COMPRESSION)).decode()
    assert f"cannot parse {sysfile}" in log, log
    # fixed, plus a platform: the tree follows again
    sysfile.write_text(good)
    edit_json(sysfile, lambda d: d.__setitem__("newcloud", d["local"]))
    assert shows(mount, (), "newcloud")


def test_unchanged_package_keeps_its_inode_and_reads_during_changes(mount, suite):
    z = mount.zip("gcp", "python-3.11", DYNAMIC_HTML)
    data = read(z)
    ino = os.stat(z).st_ino

    def same():
        assert os.stat(z).st_ino == ino
        assert read(z) == data

    shutil.copytree(suite / BENCH_DIRS[COMPRESSION], suite / "benchmarks" / "300.utilities" / "313.x")
    assert shows(mount, ("gcp", "python-3.11"), "313.x.zip")
    same()
    (suite / BENCH_DIRS[SLEEP] / "config.json").write_text("not json")
    assert shows(mount, ("gcp", "python-3.11"), SLEEP + ".log")
    same()
    edit_json(suite / "configs" / "systems.json", lambda d: d.__setitem__("newcloud", d["local"]))
    assert shows(mount, (), "newcloud")
    same()
    shutil.rmtree(suite / "benchmarks" / "300.utilities" / "313.x")
    assert hides(mount, ("gcp", "python-3.11"), "313.x.zip")
    same()
    assert builds(z) == 1


def test_reader_of_a_removed_benchmark_keeps_reading(mount, suite, tmp_path):
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    data = read(z)
    with open(z, "rb") as f:
        head = f.read(1000)
        shutil.move(suite / BENCH_DIRS[COMPRESSION], tmp_path / "away")
        assert hides(mount, ("aws", "python-3.11"), COMPRESSION + ".zip")
        assert open_errno(z) == errno.ENOENT
        assert os.fstat(f.fileno()).st_size == len(data)
        rest = f.read()
        f.seek(0)
        again = f.read()
    assert head + rest == data
    assert again == data
