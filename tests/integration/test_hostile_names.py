"""Hostile names and odd config.json values in the SeBS tree: each is
contained with one log line naming the file (odd bytes escaped), and the rest
of the tree is still served, at mount time and when they appear while
mounted."""

import json
import os
import shutil
import time

import pytest

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, SLEEP, builds, names, read,
                            wait_for)

TREE_DELAY = 10.0
LONGEST = "l" * 245    # "<name>.image.log" is exactly NAME_MAX (255) bytes
TOO_LONG = "t" * 246

# benchmark folder (bytes) -> the escaped form the log line shows
SKIPPED = {
    b"301.new\nline": "301.new\\x0aline",
    b"302.\xff\xfe": "302.\\xff\\xfe",
    b"303.caf\xc3\xa9": "303.caf\\xc3\\xa9",
    b"304 space": "304 space",
    TOO_LONG.encode(): TOO_LONG,
}
SERVED = ["305.a..b", "..306", LONGEST, "307.huge-values"]
# benchmark -> config.json and what its .log must say
BROKEN = {
    "310.langs-five": ('{"languages": 5}', '"languages" is not an array'),
    "311.langs-junk": ('{"languages": [null, 7, {"language": null}]}',
                       "languages[0] is neither a string nor an object"),
    "312.modules-str": ('{"languages": ["python"], "modules": "x"}', '"modules" is not an array'),
    "313.deep": ("[" * 5000 + "]" * 5000, "line 1 column"),
    "314.nulls": ('{"languages": null, "modules": null}', '"languages" is not an array'),
    "315.bad-utf8": (b'{"languages": ["python\xff"]}', "line 1 column"),
    "316.overflow": ('{"languages": ["python"], "memory": 99999999999999999999999}', "line 1"),
}


def plant(suite):
    """Adds every hostile benchmark to the suite copy (group 300.utilities)."""
    group = suite / "benchmarks" / "300.utilities"
    src = suite / BENCH_DIRS[COMPRESSION]
    for raw in SKIPPED:
        shutil.copytree(os.fsencode(src), os.path.join(os.fsencode(group), raw))
    for name in SERVED:
        shutil.copytree(src, group / name)
    cfg = group / "307.huge-values" / "config.json"
    cfg.write_text('{"timeout": 1e308, "memory": -9223372036854775807, "languages": ["python",'
                   ' {"language": "java", "x": [[[[{"y": null}]]]]}], "modules": []}')
    for name, (config, _) in BROKEN.items():
        shutil.copytree(src, group / name)
        data = config.encode() if isinstance(config, str) else config
        (group / name / "config.json").write_bytes(data)
    # a group folder with a newline: skipped as a whole
    shutil.copytree(os.fsencode(suite / BENCH_DIRS[SLEEP]),
                    os.path.join(os.fsencode(suite / "benchmarks"), b"400.bad\ngroup", b"401.x"))


def check_tree(m, suite):
    folder = set(os.listdir(m.path("aws", "python-3.11")))
    for name in SERVED:
        assert f"{name}.zip" in folder, name
        assert f"{name}.image.log" in folder, name
    for name in BROKEN:
        assert f"{name}.log" in folder, name
        assert f"{name}.zip" not in folder, name
    for shown in SKIPPED.values():
        assert not any(shown[:8] in f for f in folder), shown
    assert not any(f.startswith("401.x") for f in os.listdir(m.path("gcp", "nodejs-20")))
    assert {f"{DYNAMIC_HTML}.zip", f"{COMPRESSION}.zip"} <= folder

    # the 255-byte name works like any other
    long_log = m.path("aws", "python-3.11", f"{LONGEST}.image.log")
    assert len(long_log.name) == 255
    assert os.stat(long_log).st_size == 0
    for name, (_, why) in BROKEN.items():
        text = read(m.path("aws", "python-3.11", f"{name}.log")).decode("ascii")
        assert f"{suite}/benchmarks/300.utilities/{name}/config.json: " in text, text
        assert why in text, (name, text)
        assert text.isprintable() or set(text) - set("\n") <= set(
            map(chr, range(0x20, 0x7f))), text

    # the rest is served
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert "function/function.py" in names(read(z))
    z = m.zip("aws", "python-3.11", "305.a..b")
    assert "function/function.py" in names(read(z))
    assert builds(z) == 1


def check_log(m):
    err = m.stderr()
    for shown in SKIPPED.values():
        lines = [line for line in err.splitlines()
                 if f"300.utilities/{shown}: invalid benchmark name" in line]
        assert len(lines) == 1, (shown, err)
    assert len([line for line in err.splitlines()
                if "400.bad\\x0agroup: invalid group name" in line]) == 1, err
    for name in BROKEN:
        lines = [line for line in err.splitlines()
                 if f"300.utilities/{name}/config.json" in line and "not served" in line]
        assert len(lines) == 1, (name, err)
    raw = m.stderr_path.read_bytes()
    assert b"\xff" not in raw and b"new\nline" not in raw and b"bad\ngroup" not in raw


def test_hostile_tree_at_mount_time(sebsfs, suite):
    plant(suite)
    m = sebsfs()
    check_tree(m, suite)
    time.sleep(3)  # the watcher's reloads in the meantime must not repeat the warnings
    check_log(m)


def test_hostile_tree_appearing_while_mounted(mount, suite):
    z = mount.zip("aws", "nodejs-20", SLEEP)
    data = read(z)
    plant(suite)
    assert wait_for(lambda: "316.overflow.log" in os.listdir(mount.path("aws", "python-3.11")),
                    TREE_DELAY)
    assert wait_for(lambda: f"{LONGEST}.zip" in os.listdir(mount.path("azure", "python-3.10")),
                    TREE_DELAY)
    check_tree(mount, suite)
    time.sleep(3)  # the watcher's reloads in the meantime must not repeat the warnings
    check_log(mount)
    assert read(z) == data and builds(z) == 1


@pytest.mark.parametrize("name", ["..", "."])
def test_dot_names_in_systems_json(sebsfs, suite, name):
    """Platform and version keys that would be path tricks are skipped."""
    sysfile = suite / "configs" / "systems.json"
    data = json.loads(sysfile.read_text())
    data[name] = data["local"]
    data["aws"]["languages"]["python"]["base_images"]["x64"][name] = "python:odd"
    data["aws"]["languages"]["python"]["base_images"]["x64"]["3.\n1"] = "python:odd"
    sysfile.write_text(json.dumps(data))
    m = sebsfs()
    assert name not in os.listdir(m.mnt)
    assert set(os.listdir(m.path("aws"))) >= {"python-3.10", "python-3.11"}
    assert not any("odd" in r or "\n" in r or r.endswith("-.") or r.endswith("-..")
                   for r in os.listdir(m.path("aws")))
    err = m.stderr()
    assert f'invalid platform name "{name}"' in err
    assert 'invalid version name "3.\\x0a1"' in err
