"""arm64 packages built with builder=host on an x86_64 machine: the host's
pip3 and npm cross-install for the package's architecture, as SeBS's
installers do (pip --platform manylinux_2_17_aarch64 --only-binary=:all:,
npm --arch=arm64), or the build fails and its log says why.  Also: init.sh
gets the architecture as its third argument.

Every wheel and npm tarball is made here, offline, in a benchmark of the
test's own copy of the example suite."""

import base64
import hashlib
import errno
import io
import json
import os
import subprocess
import platform
import tarfile
import zipfile

import pytest

from sebsfs_testlib import log_text, member, names, open_errno, read

SP = ".python_packages/lib/site-packages/"
BENCH = "901.arch"

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="the cross-install cases assume an x86_64 host")


def make_wheel(folder, name, version, tag, arch_text):
    """A minimal, valid wheel of package `name` whose module records arch_text."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'ARCH = "{arch_text}"\n'.encode(),
        f"{dist}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\n"
                             f"Version: {version}\n").encode(),
        f"{dist}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: sebsfs-test\n"
                          f"Root-Is-Purelib: false\nTag: {tag}\n").encode(),
    }
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    path = folder / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, data in files.items():
            z.writestr(p, data)
    return path


def make_sdist(folder, name, version):
    """A source distribution (all pip could build from)."""
    path = folder / f"{name}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for rel, text in ((f"{name}-{version}/setup.py",
                           "from setuptools import setup\n"
                           f"setup(name='{name}', version='{version}')\n"),
                          (f"{name}-{version}/PKG-INFO",
                           f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")):
            data = text.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def npm_tarball(path, pkg, extra=None):
    """An npm package tarball (package/...) with package.json pkg."""
    entries = {"package/package.json": json.dumps(pkg).encode()}
    entries.update(extra or {})
    with tarfile.open(path, "w:gz") as t:
        for rel, data in entries.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))


INIT_SH = """#!/bin/bash
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
printf '%s\\n' "$#" "$2" "$3" > "$1/init-args.txt"
if [ -d "$src/vendor" ]; then cp -r "$src/vendor" "$1/"; fi
"""


@pytest.fixture
def bench(suite):
    """A benchmark for python and nodejs; python installs `archpkg`, for which
    an aarch64 (cp311) and an x86_64 wheel of one version exist, nodejs a
    tarball whose install script records npm_config_arch and an optional
    dependency that only x64 can have."""
    root = suite / "benchmarks" / "900.tests" / BENCH
    py = root / "python"
    js = root / "nodejs"
    wheels = py / "vendor" / "wheels"
    wheels.mkdir(parents=True)
    (js / "vendor").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(
        {"timeout": 10, "memory": 128, "languages": ["python", "nodejs"], "modules": []}))
    (py / "function.py").write_text("def handler(event):\n    return {}\n")
    (py / "requirements.txt").write_text("--find-links ./vendor/wheels\narchpkg==1.0\n")
    make_wheel(wheels, "archpkg", "1.0", "cp311-cp311-manylinux_2_17_aarch64", "aarch64")
    make_wheel(wheels, "archpkg", "1.0", "py3-none-manylinux_2_17_x86_64", "x86_64")
    (js / "function.js").write_text("exports.handler = async () => ({});\n")
    npm_tarball(js / "vendor" / "archrec-1.0.0.tgz", {
        "name": "archrec", "version": "1.0.0",
        "scripts": {"install": "node -e \"require('fs').writeFileSync('arch.txt',"
                               " String(process.env.npm_config_arch))\""}})
    npm_tarball(js / "vendor" / "x64only-1.0.0.tgz",
                {"name": "x64only", "version": "1.0.0", "cpu": ["x64"]},
                {"package/index.js": b"module.exports = 'x64';\n"})
    (js / "package.json").write_text(json.dumps({
        "name": "arch-bench", "version": "1.0.0",
        "dependencies": {"archrec": "file:./vendor/archrec-1.0.0.tgz"},
        "optionalDependencies": {"x64only": "file:./vendor/x64only-1.0.0.tgz"}}))
    for lang in (py, js):
        (lang / "init.sh").write_text(INIT_SH)
    return root


def wheel_tag(data):
    return [line for line in member(data, SP + "archpkg-1.0.dist-info/WHEEL").decode().splitlines()
            if line.startswith("Tag: ")]


def test_python_arm64_gets_the_aarch64_wheel(sebsfs, bench):
    m = sebsfs()
    arm = read(m.zip("aws", "python-3.11-arm64", BENCH))
    assert member(arm, SP + "archpkg/__init__.py") == b'ARCH = "aarch64"\n'
    assert wheel_tag(arm) == ["Tag: cp311-cp311-manylinux_2_17_aarch64"]
    log = log_text(m, "aws", "python-3.11-arm64", BENCH)
    assert ("pip3 install --platform manylinux_2_17_aarch64 --only-binary=:all:"
            " --python-version 3.11 --implementation cp -r requirements.txt") in log

    x64 = read(m.zip("aws", "python-3.11", BENCH))
    assert member(x64, SP + "archpkg/__init__.py") == b'ARCH = "x86_64"\n'
    assert wheel_tag(x64) == ["Tag: py3-none-manylinux_2_17_x86_64"]
    assert "--platform" not in log_text(m, "aws", "python-3.11", BENCH)


def test_arm_requirements_file_comes_first(sebsfs, bench):
    py = bench / "python"
    (py / "requirements.txt").write_text("--find-links ./vendor/wheels\nnosuchpkg==1.0\n")
    (py / "requirements.txt.arm.3.11").write_text("--find-links ./vendor/wheels\narchpkg==1.0\n")
    m = sebsfs()
    arm = read(m.zip("aws", "python-3.11-arm64", BENCH))
    assert wheel_tag(arm) == ["Tag: cp311-cp311-manylinux_2_17_aarch64"]
    assert "-r requirements.txt.arm.3.11" in log_text(m, "aws", "python-3.11-arm64", BENCH)


@pytest.mark.parametrize("only", ["sdist", "x86_64"])
def test_python_arm64_without_an_aarch64_wheel_fails(sebsfs, bench, only):
    wheels = bench / "python" / "vendor" / "wheels"
    for w in wheels.iterdir():
        w.unlink()
    if only == "sdist":
        make_sdist(wheels, "archpkg", "1.0")
    else:
        make_wheel(wheels, "archpkg", "1.0", "py3-none-manylinux_2_17_x86_64", "x86_64")
    m = sebsfs()
    assert open_errno(m.zip("aws", "python-3.11-arm64", BENCH)) == errno.EIO
    log = log_text(m, "aws", "python-3.11-arm64", BENCH)
    assert "error: pip3 install exited with status" in log
    assert ("error: pip3 found no manylinux_2_17_aarch64 wheel for CPython 3.11 of every"
            " requirement of requirements.txt") in log
    assert ("cannot be installed into a arm64 package on this x64 host (list ones that have"
            " such wheels in requirements.txt.arm.3.11, or build on an arm64 machine)") in log
    if only == "x86_64":
        # the host's own build still works from the same folder
        x64 = read(m.zip("aws", "python-3.11", BENCH))
        assert wheel_tag(x64) == ["Tag: py3-none-manylinux_2_17_x86_64"]


def npm_major():
    """The major version of the npm the host builder runs."""
    r = subprocess.run(["npm", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().split(".")[0])


def test_nodejs_arm64_installs_for_arm64(sebsfs, bench):
    m = sebsfs()
    arm = read(m.zip("aws", "nodejs-20-arm64", BENCH))
    n = set(names(arm))
    assert member(arm, "node_modules/archrec/arch.txt") == b"arm64"
    # npm's own platform check leaves the x64-only optional package out; npm
    # before 10 (Debian 12 has 9.2) ignores --cpu and keeps it (README)
    if npm_major() >= 10:
        assert not [x for x in n if x.startswith("node_modules/x64only/")], sorted(n)
    else:
        assert "node_modules/x64only/index.js" in n
    assert "npm install --arch=arm64 --cpu=arm64 (host)" in log_text(
        m, "aws", "nodejs-20-arm64", BENCH)

    x64 = read(m.zip("aws", "nodejs-20", BENCH))
    assert "node_modules/x64only/index.js" in names(x64)
    assert member(x64, "node_modules/archrec/arch.txt") != b"arm64"


def test_arm64_and_x64_never_share_a_layer(sebsfs, bench):
    m = sebsfs()
    keys = {}
    for runtime in ("python-3.11", "python-3.11-arm64"):
        z = m.zip("aws", runtime, BENCH)
        read(z)
        keys[runtime] = os.getxattr(z, "user.sebs.deps_hash").decode()
    assert keys["python-3.11"] != keys["python-3.11-arm64"]
    layer = (m.cache / "layers" / keys["python-3.11-arm64"] / "layer.json").read_text()
    assert '--platform manylinux_2_17_aarch64' in layer


@pytest.mark.parametrize("runtime,arch", [("python-3.11", "x64"), ("python-3.11-arm64", "arm64"),
                                          ("nodejs-20-arm64", "arm64")])
def test_init_sh_gets_the_architecture(sebsfs, bench, runtime, arch):
    m = sebsfs()
    data = read(m.zip("aws", runtime, BENCH))
    # bash init.sh <workdir> false <arch>, as SeBS's add_benchmark_data
    assert member(data, "function/init-args.txt") == f"3\nfalse\n{arch}\n".encode()
