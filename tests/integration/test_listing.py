"""The tree: what is listed, and that listing/stat/find/getfattr never build."""

import os
import stat
import time

from sebsfs_testlib import COMPRESSION, DYNAMIC_HTML, PLATFORMS, SLEEP, builds, run, state, xattr

PY = ["python-3.10", "python-3.11"]
JS = ["nodejs-18", "nodejs-20"]
BFS = "503.graph-bfs"
# java and cpp where SeBS packages them (docs/languages.md), from the suite's systems.json
COMPILED = {
    "aws": {"x64": ["java-11", "java-17", "cpp-all"], "arm64": ["java-17"]},
    "azure": {"x64": ["java-17"]},
    "gcp": {"x64": ["java-17"]},
    "openwhisk": {"x64": ["java-8"]},
}


def expected_runtimes(platform, arch="x64"):
    rts = PY + JS
    other = "-arm64" if arch == "x64" else "-x64"
    compiled = COMPILED.get(platform, {})
    # the default architecture's folders are unsuffixed
    got = set(compiled.get(arch, [])) | {r + other for r in compiled.get(
        "arm64" if arch == "x64" else "x64", [])}
    if platform != "aws":
        return set(rts) | got
    return set(rts) | {r + other for r in rts} | got


CONTAINER_PLATFORMS = {"aws", "gcp", "openwhisk"}  # deployments include "container"


def code_suffix(runtime, platform):
    """The code package's suffix, or None (openwhisk java: image only)."""
    if runtime.startswith("java"):
        return {"aws": ".jar", "openwhisk": None}.get(platform, ".zip")
    return ".zip"


def files_for(runtime, platform=None):
    """The entries of a runtime folder: files, and a directory view
    "<benchmark>" of each code package; function images (.image) only where
    the platform deploys containers."""
    if runtime.startswith("python"):
        benches = [DYNAMIC_HTML, COMPRESSION]
    elif runtime.startswith("cpp"):
        benches = [SLEEP, BFS]
    else:
        benches = [DYNAMIC_HTML, SLEEP]
    suffix = code_suffix(runtime, platform)
    exts = [suffix, suffix + ".log", ""] if suffix else []
    if platform in CONTAINER_PLATFORMS:
        exts += [".image", ".image.log"]
    return {b + ext for b in benches for ext in exts}


def all_zips(m):
    """Every code package (.zip, and .jar of aws java)."""
    for platform in PLATFORMS:
        for rt in expected_runtimes(platform):
            for f in files_for(rt, platform):
                if f.endswith((".zip", ".jar")):
                    yield m.path(platform, rt, f)


def test_tree_lists_platforms_runtimes_and_packages(mount):
    assert set(os.listdir(mount.mnt)) == set(PLATFORMS)
    for platform in PLATFORMS:
        runtimes = set(os.listdir(mount.path(platform)))
        assert runtimes == expected_runtimes(platform), platform
        for rt in runtimes:
            assert stat.S_ISDIR(os.stat(mount.path(platform, rt)).st_mode)
            assert set(os.listdir(mount.path(platform, rt))) == files_for(rt, platform), (platform, rt)


def views(m):
    """Every directory view (a folder in a runtime folder)."""
    for platform in PLATFORMS:
        for rt in expected_runtimes(platform):
            for f in files_for(rt, platform):
                if not f.endswith((".zip", ".jar", ".log", ".image")):
                    yield m.path(platform, rt, f)


def test_listing_stat_find_getfattr_do_not_build(mount):
    # Everything but the inside of the directory views, whose listing builds
    # (tests/integration/test_dir_views.py): find and ls stop at them.
    t0 = time.monotonic()
    runtime_folders = [str(mount.path(p, rt)) for p in PLATFORMS for rt in expected_runtimes(p)]
    files = run(["find", str(mount.mnt), "-mindepth", "3", "-type", "d", "-prune", "-o",
                 "-type", "f", "-print"]).stdout.split("\n")[:-1]
    for argv in (["ls", "-l"] + runtime_folders, ["find", str(mount.mnt), "-maxdepth", "3"],
                 ["getfattr", "-d", "-m", "-"] + files + [str(v) for v in views(mount)]):
        r = run(argv, timeout=60)
        assert r.returncode == 0, (argv, r.stderr)
    assert len([f for f in files if f.endswith((".zip", ".jar"))]) == len(list(all_zips(mount)))
    for v in views(mount):
        st = os.stat(v)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555, v
    for z in all_zips(mount):
        st = os.stat(z)
        assert stat.S_ISREG(st.st_mode)
        assert st.st_size == 0, f"{z}: a never-built package has size 0, got {st.st_size}"
        assert state(z) == "absent", z
        assert builds(z) == 0, z
        for name in ("user.sebs.sha256", "user.sebs.input_hash", "user.sebs.built_at",
                     "user.sebs.build_seconds"):
            assert xattr(z, name) is None, (z, name)
    assert time.monotonic() - t0 < 30
    packages = mount.cache / "packages"
    assert not packages.exists() or not [p for p in packages.iterdir() if p.suffix == ".zip"]


def test_listxattr_names_state(mount):
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert "user.sebs.state" in os.listxattr(z)


def test_unknown_names_do_not_exist(mount):
    for rel in ("nosuchplatform", "aws/java-8", "aws/cpp-all-arm64", "local/java-17",
                "aws/java-17/010.sleep.zip", "openwhisk/java-8/010.sleep.zip",
                "aws/cpp-all/110.dynamic-html.zip", "aws/python-3.9", "aws/python-3.11/nosuch.zip",
                "aws/python-3.11/010.sleep.zip", "aws/nodejs-20/311.compression.zip",
                "gcp/python-3.11-arm64"):
        assert not os.path.exists(mount.path(rel)), rel


def test_arch_arm64_default_renames_runtime_folders(sebsfs):
    m = sebsfs(options=("builder=host", "arch=arm64"))
    assert set(os.listdir(m.path("aws"))) == expected_runtimes("aws", arch="arm64")
