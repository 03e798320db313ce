"""Editing any input makes the next read rebuild; unrelated edits do not."""

import json
import os

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, SLEEP, append, builds,
                            edit_json, member, names, read, state)

SP = ".python_packages/lib/site-packages/"


def built(mount, platform, runtime, bench):
    z = mount.zip(platform, runtime, bench)
    data = read(z)
    assert builds(z) == 1
    return z, data


def rebuilt(z, expected_builds=2):
    data = read(z)
    assert builds(z) == expected_builds, f"{z}: expected a rebuild after the edit"
    assert state(z) == "fresh"
    return data


def test_edit_code_file(mount, suite):
    z, old = built(mount, "aws", "python-3.11", DYNAMIC_HTML)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "function.py", "# edited: code-marker\n")
    assert state(z) == "stale"
    new = rebuilt(z)
    assert b"code-marker" in member(new, "function/function.py")
    assert read(z) == new and builds(z) == 2


def test_edit_language_data_file(mount, suite):
    z, _ = built(mount, "aws", "nodejs-20", DYNAMIC_HTML)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "nodejs" / "templates" / "template.html",
           "<!-- template-marker -->\n")
    assert b"template-marker" in member(rebuilt(z), "function/templates/template.html")


def test_edit_benchmark_init_sh(mount, suite):
    z, old = built(mount, "aws", "python-3.11", COMPRESSION)
    assert "function/resources/added.txt" not in names(old)
    append(suite / BENCH_DIRS[COMPRESSION] / "init.sh", 'echo init-marker > "$1/resources/added.txt"\n')
    new = rebuilt(z)
    assert member(new, "function/resources/added.txt") == b"init-marker\n"


def test_edit_language_init_sh(mount, suite):
    z, _ = built(mount, "gcp", "python-3.11", DYNAMIC_HTML)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "init.sh", 'echo lang-init > "$1/extra.txt"\n')
    assert member(rebuilt(z), "function/extra.txt") == b"lang-init\n"


def test_edit_data_file(mount, suite):
    z, _ = built(mount, "aws", "python-3.11", COMPRESSION)
    append(suite / BENCH_DIRS[COMPRESSION] / "resources" / "texts" / "numbers.csv", "6,36,216\n")
    assert member(rebuilt(z), "function/resources/texts/numbers.csv").endswith(b"6,36,216\n")


def test_add_and_rename_data_files(mount, suite):
    z, _ = built(mount, "local", "python-3.11", COMPRESSION)
    res = suite / BENCH_DIRS[COMPRESSION] / "resources"
    (res / "new.txt").write_text("new data\n")
    assert member(rebuilt(z, 2), "function/resources/new.txt") == b"new data\n"
    os.rename(res / "lorem.txt", res / "lorem-renamed.txt")
    n = names(rebuilt(z, 3))
    assert "function/resources/lorem-renamed.txt" in n and "function/resources/lorem.txt" not in n


def test_edit_package_sh(mount, suite):
    z, _ = built(mount, "aws", "python-3.11", DYNAMIC_HTML)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "package.sh",
           'echo package-marker >> "$1/.sebs-packaged"\n')
    assert b"package-marker" in member(rebuilt(z), SP + ".sebs-packaged")


def test_edit_version_specific_requirements(mount, suite):
    z, old = built(mount, "aws", "python-3.10", DYNAMIC_HTML)
    assert SP + "sebs_example_util-0.9.0.dist-info/METADATA" in names(old)
    (suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "requirements.txt.3.10").write_text(
        "./wheels/sebs_example_util-1.0.0-py3-none-any.whl\n")
    assert SP + "sebs_example_util-1.0.0.dist-info/METADATA" in names(rebuilt(z))


def test_edit_version_specific_package_json(mount, suite):
    z, _ = built(mount, "aws", "nodejs-20", SLEEP)
    edit_json(suite / BENCH_DIRS[SLEEP] / "nodejs" / "package.json.20",
              lambda d: d.update(description="package-json-marker"))
    assert json.loads(member(rebuilt(z), "package.json"))["description"] == "package-json-marker"


def test_edit_config_json(mount, suite):
    z, _ = built(mount, "aws", "python-3.11", COMPRESSION)
    edit_json(suite / BENCH_DIRS[COMPRESSION] / "config.json", lambda d: d.update(memory=512))
    rebuilt(z)


def test_edit_wrapper_rebuilds_only_that_platform(mount, suite):
    z, _ = built(mount, "aws", "python-3.11", DYNAMIC_HTML)
    other, other_data = built(mount, "gcp", "python-3.11", DYNAMIC_HTML)
    append(suite / "benchmarks" / "wrappers" / "aws" / "python" / "storage.py", "# wrapper-marker\n")
    assert b"wrapper-marker" in member(rebuilt(z), "function/storage.py")
    assert read(other) == other_data and builds(other) == 1


def test_edit_systems_json_subtree(mount, suite):
    z, old = built(mount, "aws", "python-3.11", COMPRESSION)
    other, other_data = built(mount, "gcp", "python-3.11", COMPRESSION)
    assert "function/setup.py" in names(old)
    sysjson = suite / "configs" / "systems.json"
    # the platform/language subtree: drop a wrapper file (visible in the zip)
    edit_json(sysjson, lambda d: d["aws"]["languages"]["python"]["deployment"]["files"].remove("setup.py"))
    assert "function/setup.py" not in names(rebuilt(z, 2))
    assert read(other) == other_data and builds(other) == 1
    # another platform's subtree does not concern aws packages
    edit_json(sysjson, lambda d: d["azure"]["languages"]["python"]["base_images"]["x64"].update(
        {"3.11": "example/other-image:3.11"}))
    read(z)
    assert builds(z) == 2
    # the general section is part of every package's inputs
    edit_json(sysjson, lambda d: d["general"].update(SeBS_version="1.2.2"))
    rebuilt(z, 3)


def test_edit_other_language_does_not_rebuild(mount, suite):
    z, data = built(mount, "aws", "python-3.11", DYNAMIC_HTML)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "nodejs" / "function.js", "// other-language\n")
    assert read(z) == data
    assert builds(z) == 1 and state(z) == "fresh"


def test_touch_without_change_keeps_package(mount, suite):
    # only the stat fast path changes; the full re-hash finds identical content
    z, data = built(mount, "aws", "python-3.11", COMPRESSION)
    os.utime(suite / BENCH_DIRS[COMPRESSION] / "python" / "function.py")
    assert read(z) == data
    assert builds(z) == 1
