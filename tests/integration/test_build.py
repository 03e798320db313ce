"""First read builds, later reads come from the cache; package contents."""

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, SLEEP, builds, member, names,
                            read, sha256, state, with_timeout, xattr)

SP = ".python_packages/lib/site-packages/"


def test_first_read_builds_second_read_is_cached(mount):
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert state(z) == "absent"
    first = read(z)
    assert builds(z) == 1
    assert state(z) == "fresh"
    assert xattr(z, "user.sebs.sha256") == sha256(first)
    assert re.fullmatch(r"[0-9a-f]{64}", xattr(z, "user.sebs.input_hash") or "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", xattr(z, "user.sebs.built_at") or "")
    assert float(xattr(z, "user.sebs.build_seconds")) >= 0
    assert os.stat(z).st_size == len(first)
    second = read(z)
    assert second == first
    assert builds(z) == 1
    assert zipfile.ZipFile(z).testzip() is None


def test_build_log(mount):
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    read(z)
    log = read(mount.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    assert "110.dynamic-html/python init: copied templates/ and wheels/ (arch=x64)" in log
    assert "package.sh: cleaned .python_packages/lib/site-packages for AWS" in log
    lines = [ln for ln in log.splitlines() if ln.strip()]
    assert lines[-1].startswith("[sebsfs] build succeeded"), lines[-3:]


def test_init_sh_arguments_and_cwd(mount, suite):
    read(mount.zip("gcp", "python-3.10", COMPRESSION))
    log = read(mount.log("gcp", "python-3.10", COMPRESSION)).decode()
    assert "311.compression init: copied 2 data files (verbose=false arch=x64)" in log
    cwd = os.path.realpath(suite / BENCH_DIRS[COMPRESSION])
    assert f"311.compression init: cwd={cwd}" in log


def test_first_open_with_zipfile_and_cp(mount, tmp_path):
    z = mount.zip("azure", "nodejs-20", DYNAMIC_HTML)
    listing = with_timeout(lambda: zipfile.ZipFile(z).namelist(), what="zipfile on first open")
    assert "handler/function.js" in listing
    z2 = mount.zip("gcp", "python-3.11", DYNAMIC_HTML)
    r = subprocess.run(["cp", str(z2), str(tmp_path / "copy.zip")], timeout=180)
    assert r.returncode == 0
    copied = (tmp_path / "copy.zip").read_bytes()
    assert copied == read(z2)
    assert zipfile.ZipFile(tmp_path / "copy.zip").testzip() is None
    assert builds(z2) == 1
    r = subprocess.run([sys.executable, "-c", "import sys;print(len(open(sys.argv[1],'rb').read()))",
                        str(mount.zip("local", "python-3.11", COMPRESSION))],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and int(r.stdout) == os.stat(mount.zip("local", "python-3.11", COMPRESSION)).st_size > 0


def test_python_dependencies_installed(mount, suite):
    data = read(mount.zip("aws", "python-3.11", DYNAMIC_HTML))
    n = set(names(data))
    assert SP + "sebs_example_util/__init__.py" in n
    assert SP + "sebs_example_util-1.0.0.dist-info/METADATA" in n
    assert not [x for x in n if "__pycache__" in x or x.endswith(".pyc")]
    marker = member(data, SP + ".sebs-packaged").decode()
    assert "platform=AWS" in marker and "python=3.11" in marker and "arch=x64" in marker
    init = member(data, SP + "sebs_example_util/__init__.py").decode()
    assert '__version__ = "1.0.0"' in init
    assert member(data, "function/function.py") == \
        (suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "function.py").read_bytes()


def test_version_specific_requirements(mount):
    data = read(mount.zip("aws", "python-3.10", DYNAMIC_HTML))
    n = set(names(data))
    assert SP + "sebs_example_util-0.9.0.dist-info/METADATA" in n
    assert not [x for x in n if "sebs_example_util-1.0.0.dist-info" in x]
    assert "python=3.10" in member(data, SP + ".sebs-packaged").decode()


def test_arm64_package(mount):
    z = mount.zip("aws", "python-3.11-arm64", DYNAMIC_HTML)
    data = read(z)
    assert "arch=arm64" in member(data, SP + ".sebs-packaged").decode()
    log = read(mount.log("aws", "python-3.11-arm64", DYNAMIC_HTML)).decode()
    assert "arch=arm64" in log
    assert builds(mount.zip("aws", "python-3.11", DYNAMIC_HTML)) == 0


def test_nodejs_dependencies_installed(mount):
    data = read(mount.zip("aws", "nodejs-20", DYNAMIC_HTML))
    zf = zipfile.ZipFile(__import__("io").BytesIO(data))
    n = set(zf.namelist())
    for f in ("index.js", "package.json", "lib/escape.js"):
        info = zf.getinfo("node_modules/sebs-example-lib/" + f)
        assert (info.external_attr >> 16) & 0o170000 in (0, 0o100000), f"{f} is not a regular file"
        assert info.file_size > 0
    assert "node_modules/.package-lock.json" not in n
    assert "function/templates/template.html" in n
    assert "function/vendor/sebs-example-lib-1.0.0.tgz" in n
    pkg = json.loads(member(data, "node_modules/sebs-example-lib/package.json"))
    assert pkg["name"] == "sebs-example-lib" and pkg["version"] == "1.0.0"


def test_nodejs_version_specific_package_json(mount, suite):
    src = suite / BENCH_DIRS[SLEEP] / "nodejs"
    d20 = read(mount.zip("aws", "nodejs-20", SLEEP))
    d18 = read(mount.zip("aws", "nodejs-18", SLEEP))
    assert json.loads(member(d20, "package.json")) == json.loads((src / "package.json.20").read_text())
    assert json.loads(member(d18, "package.json")) == json.loads((src / "package.json").read_text())


def test_benchmark_data_copied(mount, suite):
    data = read(mount.zip("aws", "python-3.11", COMPRESSION))
    res = suite / BENCH_DIRS[COMPRESSION] / "resources"
    assert member(data, "function/resources/lorem.txt") == (res / "lorem.txt").read_bytes()
    assert member(data, "function/resources/texts/numbers.csv") == \
        (res / "texts" / "numbers.csv").read_bytes()
    n = names(data)
    assert "function/function.py" in n and "handler.py" in n
    assert not [x for x in n if x.endswith(("init.sh", "input.py", "config.json"))]


def test_builder_none_skips_installation(sebsfs):
    m = sebsfs(options=("builder=none",))
    py = names(read(m.zip("aws", "python-3.11", DYNAMIC_HTML)))
    assert not [x for x in py if x.startswith(".python_packages/") and not x.endswith("/")]
    assert "function/templates/template.html" in py
    js = names(read(m.zip("aws", "nodejs-20", DYNAMIC_HTML)))
    assert not [x for x in js if x.startswith("node_modules/")]


def test_packages_differ_per_platform_and_are_independent(mount):
    shas = {}
    for platform in ("aws", "gcp", "azure", "local", "openwhisk"):
        z = mount.zip(platform, "python-3.11", DYNAMIC_HTML)
        shas[platform] = sha256(read(z))
        assert builds(z) == 1
    assert len(set(shas.values())) == len(shas)


def test_stat_builds_option_makes_stat_wait(sebsfs):
    m = sebsfs(options=("builder=host", "stat_builds"))
    z = m.zip("aws", "python-3.11", COMPRESSION)
    r = subprocess.run(["unzip", "-l", str(z)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "function/function.py" in r.stdout
    assert builds(z) == 1
    r = subprocess.run(["ls", "-l", str(m.path("aws", "nodejs-20"))], capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0
    z2 = m.zip("aws", "nodejs-20", SLEEP)
    assert builds(z2) == 1 and state(z2) == "fresh"
    assert os.stat(z2).st_size == len(read(z2)) > 0


def test_without_stat_builds_stat_shows_zero(mount):
    # Documented behaviour: without -o stat_builds, stat of a never-built package
    # reports size 0, so tools that trust a size taken before open (Info-ZIP
    # `unzip -l`, GNU tar) see an empty file until the package is built once.
    z = mount.zip("aws", "python-3.11", COMPRESSION)
    assert os.stat(z).st_size == 0
    assert builds(z) == 0 and state(z) == "absent"
    data = read(z)
    assert os.stat(z).st_size == len(data) > 0
    r = subprocess.run(["unzip", "-l", str(z)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "function/function.py" in r.stdout


def test_default_root_serves_bundled_suite(sebsfs):
    m = sebsfs(use_root=False)
    files = set(os.listdir(m.path("aws", "python-3.11")))
    assert {DYNAMIC_HTML + ".zip", COMPRESSION + ".zip"} <= files
    assert SLEEP + ".zip" in os.listdir(m.path("openwhisk", "nodejs-20"))


def test_source_tree_untouched(mount, suite):
    before = sorted(str(p.relative_to(suite)) for p in suite.rglob("*"))
    read(mount.zip("aws", "python-3.11", DYNAMIC_HTML))
    read(mount.zip("aws", "nodejs-20", DYNAMIC_HTML))
    read(mount.zip("aws", "python-3.11", COMPRESSION))
    after = sorted(str(p.relative_to(suite)) for p in suite.rglob("*"))
    assert before == after
    assert shutil.which("unzip")
