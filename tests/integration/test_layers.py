"""Dependency layers (src/builder/deplayer.h) through real mounts, builder=host.

The dependency install runs once per dependency key in a folder holding only
the key's inputs, and its zipped result is spliced into every package with
that key.  These tests check: reuse across rebuilds, platforms and benchmarks
with bytes equal to a cold build (and to an in-place install); that every key
input invalidates (one test per input); that an install reading an undeclared
file fails loudly; eviction under cache_max; and a layer build killed midway.
"""

import io
import os
import shutil
import signal
import subprocess
import tarfile
import threading

import pytest

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, append, builds, edit_json, log_text,
                            member, names, read, wait_for, xattr, zip_of)

SP = ".python_packages/lib/site-packages/"
NODE_LIB = "node_modules/sebs-example-lib/"


def deps(path):
    return xattr(path, "user.sebs.deps_hash"), xattr(path, "user.sebs.deps_reused")


def lang_dir(suite, language):
    return suite / BENCH_DIRS[DYNAMIC_HTML] / language


# ------------------------------------------------------------------ reuse

def test_code_edit_reuses_the_layer_and_matches_a_cold_build(sebsfs, suite, tmp_path):
    m = sebsfs()
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    first = read(z)
    key, reused = deps(z)
    assert len(key) == 64 and reused == "no"
    assert SP + "sebs_example_util/__init__.py" in names(first)
    assert "dependency layer %s: not cached" % key[:12] in log_text(m, "aws", "python-3.11",
                                                                     DYNAMIC_HTML)

    append(lang_dir(suite, "python") / "function.py", "\n# a one-line edit\n")
    rebuilt = read(z)
    assert builds(z) == 2
    assert deps(z) == (key, "yes")
    log = log_text(m, "aws", "python-3.11", DYNAMIC_HTML)
    assert "dependency layer %s: reused" % key[:12] in log
    assert "pip3 install" not in log  # no install ran
    assert "spliced without compressing them again" in log
    assert member(rebuilt, "function/function.py").endswith(b"# a one-line edit\n")
    m.stop()

    # the same inputs, cold: a fresh cache, then no layers at all
    cold = sebsfs(cache=tmp_path / "cold")
    assert read(cold.zip("aws", "python-3.11", DYNAMIC_HTML)) == rebuilt
    assert deps(cold.zip("aws", "python-3.11", DYNAMIC_HTML)) == (key, "no")
    cold.stop()
    flat = sebsfs(cache=tmp_path / "flat", options=("builder=host", "dep_layers=off"))
    zf = flat.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert read(zf) == rebuilt, "a layer must give the bytes of an install in the work folder"
    assert deps(zf) == (None, None)
    assert "dependency layer" not in log_text(flat, "aws", "python-3.11", DYNAMIC_HTML)


def test_one_layer_serves_several_platforms_when_nothing_platform_specific_is_read(mount):
    # nodejs 110.dynamic-html has no package.sh: the install gets no PLATFORM
    first = mount.zip("aws", "nodejs-20", DYNAMIC_HTML)
    read(first)
    key, reused = deps(first)
    assert reused == "no"
    for platform in ("gcp", "azure", "local"):
        z = mount.zip(platform, "nodejs-20", DYNAMIC_HTML)
        data = read(z)
        assert deps(z) == (key, "yes"), platform
        assert any(n.startswith(NODE_LIB) for n in names(data)), platform
    # openwhisk's zip holds no dependencies: nothing to splice, and no layer
    ow = mount.zip("openwhisk", "nodejs-20", DYNAMIC_HTML)
    assert not any(n.startswith("node_modules/") for n in names(read(ow)))


def test_package_sh_reading_platform_makes_the_layer_platform_specific(mount):
    # python 110.dynamic-html's package.sh writes PLATFORM into the packages
    a = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    g = mount.zip("gcp", "python-3.11", DYNAMIC_HTML)
    da, dg = read(a), read(g)
    assert deps(a)[0] != deps(g)[0]
    assert deps(g)[1] == "no"
    assert b"platform=AWS" in member(da, SP + ".sebs-packaged")
    assert b"platform=GCP" in member(dg, SP + ".sebs-packaged")


def test_one_layer_serves_several_benchmarks(sebsfs, suite):
    other = suite / "benchmarks/100.webapps/120.dynamic-copy"
    shutil.copytree(suite / BENCH_DIRS[DYNAMIC_HTML], other)
    append(other / "nodejs" / "function.js", "\n// another benchmark\n")
    m = sebsfs()
    a = m.zip("aws", "nodejs-20", DYNAMIC_HTML)
    b = m.zip("aws", "nodejs-20", "120.dynamic-copy")
    read(a)
    data = read(b)
    assert deps(b) == (deps(a)[0], "yes")
    assert member(data, "function/function.js").endswith(b"// another benchmark\n")


def test_two_builds_needing_one_layer_at_once_build_it_once(sebsfs, suite):
    other = suite / "benchmarks/100.webapps/120.dynamic-copy"
    shutil.copytree(suite / BENCH_DIRS[DYNAMIC_HTML], other)
    # a slow install, so that both builds are surely there while it runs
    for d in (suite / BENCH_DIRS[DYNAMIC_HTML], other):
        append(d / "python" / "package.sh", "\nsleep 2\n")
    m = sebsfs(options=("builder=host", "jobs=2"))
    zips = [m.zip("aws", "python-3.11", DYNAMIC_HTML), m.zip("aws", "python-3.11",
                                                             "120.dynamic-copy")]
    out = {}
    threads = [threading.Thread(target=lambda z=z: out.setdefault(z, read(z))) for z in zips]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = {deps(z)[0] for z in zips}
    assert len(keys) == 1
    logs = [log_text(m, "aws", "python-3.11", b) for b in (DYNAMIC_HTML, "120.dynamic-copy")]
    assert sum("not cached; installing" in log for log in logs) == 1, logs
    waited = [log for log in logs if "not cached" not in log][0]
    assert "another build is making it; waiting" in waited
    assert sorted(deps(z)[1] for z in zips) == ["no", "yes"]
    layers = os.listdir(m.cache / "layers")
    assert layers == [keys.pop()]


# ---------------------------------------------------- every key input invalidates

def rebuild_key(m, platform, runtime, edit):
    """The layer key of a package before and after edit(); the package is
    read after the edit, so a changed key has been built."""
    z = m.zip(platform, runtime, DYNAMIC_HTML)
    read(z)
    before = deps(z)[0]
    edit()
    data = read(z)
    after, reused = deps(z)
    return before, after, reused, data


def test_requirements_content_is_in_the_key(mount, suite):
    req = lang_dir(suite, "python") / "requirements.txt"
    before, after, reused, _ = rebuild_key(mount, "aws", "python-3.11",
                                           lambda: append(req, "# a comment changes the key\n"))
    assert before != after and reused == "no"


def test_deployment_packages_are_in_the_key(mount, suite):
    # step 5 merges systems.json's packages into package.json before the key is made
    def edit():
        def add(s):
            s["aws"]["languages"]["nodejs"]["deployment"]["packages"] = {
                "sebs-example-lib": "file:./vendor/sebs-example-lib-1.0.0.tgz"}
        edit_json(suite / "configs" / "systems.json", add)
    before, after, reused, _ = rebuild_key(mount, "aws", "nodejs-20", edit)
    assert before != after and reused == "no"


def test_package_json_content_is_in_the_key(mount, suite):
    pj = lang_dir(suite, "nodejs") / "package.json"
    before, after, reused, _ = rebuild_key(
        mount, "aws", "nodejs-20", lambda: edit_json(pj, lambda d: d.update(version="1.0.1")))
    assert before != after and reused == "no"


def test_package_sh_is_in_the_key(mount, suite):
    sh = lang_dir(suite, "python") / "package.sh"
    before, after, reused, data = rebuild_key(
        mount, "aws", "python-3.11",
        lambda: append(sh, '\necho edited > "$1/edited.txt"\n'))
    assert before != after and reused == "no"
    assert member(data, SP + "edited.txt") == b"edited\n"


def repack_tgz(path, extra_name, extra_text):
    """Adds a file to an npm tarball (package/...), in place."""
    tmp = path.with_suffix(".new")
    with tarfile.open(path) as src, tarfile.open(tmp, "w:gz") as dst:
        for info in src.getmembers():
            dst.addfile(info, src.extractfile(info) if info.isfile() else None)
        data = extra_text.encode()
        info = tarfile.TarInfo("package/" + extra_name)
        info.size = len(data)
        info.mode = 0o644
        dst.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


def test_local_file_named_by_the_dependency_file_is_in_the_key(mount, suite):
    tgz = lang_dir(suite, "nodejs") / "vendor" / "sebs-example-lib-1.0.0.tgz"
    before, after, reused, data = rebuild_key(
        mount, "aws", "nodejs-20", lambda: repack_tgz(tgz, "added.txt", "new content\n"))
    assert before != after and reused == "no"
    assert member(data, NODE_LIB + "added.txt") == b"new content\n"


def layer_keys(mount, runtimes):
    keys = []
    for runtime in runtimes:
        z = mount.zip("aws", runtime, DYNAMIC_HTML)
        read(z)
        keys.append(deps(z))
    return keys


def test_version_is_in_the_key(mount):
    # nodejs-18 and nodejs-20 install the same package.json with the same npm
    (k18, r18), (k20, r20) = layer_keys(mount, ("nodejs-18", "nodejs-20"))
    assert k18 != k20 and r18 == r20 == "no"


def test_arch_is_in_the_key(mount):
    # the same requirements.txt and package.sh; TARGET_ARCHITECTURE differs
    (kx, rx), (ka, ra) = layer_keys(mount, ("python-3.11", "python-3.11-arm64"))
    assert kx != ka and rx == ra == "no"


def test_host_tool_versions_are_in_the_key(sebsfs, tmp_path):
    m = sebsfs()
    z = m.zip("aws", "nodejs-20", DYNAMIC_HTML)
    read(z)
    key = deps(z)[0]
    m.stop()
    # the same cache, but an npm that reports another version
    bindir = tmp_path / "bin"
    bindir.mkdir()
    real = shutil.which("npm")
    wrapper = bindir / "npm"
    wrapper.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo 99.0.0; exit 0; fi\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{bindir}:{old}"
    try:
        m2 = sebsfs()
    finally:
        os.environ["PATH"] = old
    z2 = m2.zip("aws", "nodejs-20", DYNAMIC_HTML)
    # the zip itself is fresh (the builder's identity did not change), so
    # evict it to make the next read build
    os.unlink(z2)
    read(z2)
    assert deps(z2)[0] != key and deps(z2)[1] == "no"
    assert "npm 99.0.0" in (m2.cache / "layers" / deps(z2)[0] / "layer.json").read_text()


# ---------------------------------------------------------- completeness, errors

def test_an_install_reading_an_undeclared_file_fails_loudly(sebsfs, suite, tmp_path):
    sh = lang_dir(suite, "python") / "package.sh"
    # reads the benchmark's code, which is not an input of the dependency key
    append(sh, '\ncat function.py > /dev/null\n')
    m = sebsfs()
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    with pytest.raises(OSError):
        read(z)
    log = log_text(m, "aws", "python-3.11", DYNAMIC_HTML)
    assert "ran with only the files above" in log
    assert "holds only requirements.txt, wheels/sebs_example_util-1.0.0-py3-none-any.whl" in log
    assert os.listdir(m.cache / "layers") == []
    m.stop()
    # installing in the work folder (as SeBS does) sees the file
    flat = sebsfs(cache=tmp_path / "flat", options=("builder=host", "dep_layers=off"))
    read(flat.zip("aws", "python-3.11", DYNAMIC_HTML))


def test_a_local_path_outside_the_work_folder_is_refused(mount, suite, tmp_path):
    outside = tmp_path / "outside.whl"
    outside.write_bytes(b"not a wheel")
    append(lang_dir(suite, "python") / "requirements.txt", f"{outside}\n")
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    with pytest.raises(OSError):
        read(z)
    log = log_text(mount, "aws", "python-3.11", DYNAMIC_HTML)
    assert f"requirements.txt line 3 names {outside}, which is outside the work folder" in log


# ------------------------------------------------------------ cache rules

def test_layers_are_evicted_under_cache_max(sebsfs, suite):
    m = sebsfs(options=("builder=host", "cache_max=1K"))
    z = m.zip("aws", "nodejs-20", DYNAMIC_HTML)
    data = read(z)
    key = deps(z)[0]
    # the package just built is kept; its layer (bigger than 1K) goes
    assert wait_for(lambda: not (m.cache / "layers" / key).exists(), 10)
    assert f"evicted dependency layer {key[:12]}" in m.stderr()
    append(lang_dir(suite, "nodejs") / "function.js", "\n// edit\n")
    again = read(z)
    assert deps(z) == (key, "no")  # built again, same key
    assert names(again) == names(data)


def test_a_killed_layer_build_leaves_nothing_and_builds_next_time(sebsfs, suite):
    sh = lang_dir(suite, "python") / "package.sh"
    marker = suite / "package-sh-started"
    append(sh, f'\ntouch {marker}\nsleep 60\n')
    m = sebsfs()
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    t = threading.Thread(target=lambda: subprocess.run(["cat", str(z)], capture_output=True),
                         daemon=True)
    t.start()
    assert wait_for(marker.exists, 60), "the layer's install never started"
    m.signal(signal.SIGKILL)
    m.proc.wait(timeout=10)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], capture_output=True)
    # the interrupted layer is nowhere once a sebsfs opened the cache again
    text = sh.read_text().replace("sleep 60\n", "")
    sh.write_text(text)
    m2 = sebsfs()
    assert os.listdir(m2.cache / "layers") == []
    assert os.listdir(m2.cache / "tmp") == [] and os.listdir(m2.cache / "work") == []
    data = read(m2.zip("aws", "python-3.11", DYNAMIC_HTML))
    key = deps(m2.zip("aws", "python-3.11", DYNAMIC_HTML))[0]
    assert os.listdir(m2.cache / "layers") == [key]
    assert SP + "sebs_example_util/__init__.py" in names(data)


def test_a_damaged_layer_is_detected_and_installed_again(sebsfs, suite, tmp_path):
    m = sebsfs()
    z = m.zip("aws", "nodejs-20", DYNAMIC_HTML)
    good = read(z)
    key = deps(z)[0]
    m.stop()
    # one byte of a compressed entry flipped: the zip's structure stays valid
    zip_path = m.cache / "layers" / key / "deps.zip"
    zip_path.chmod(0o644)
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    zip_path.write_bytes(bytes(data))
    zip_path.chmod(0o444)
    append(lang_dir(suite, "nodejs") / "function.js", "\n// edit\n")
    m2 = sebsfs()
    z2 = m2.zip("aws", "nodejs-20", DYNAMIC_HTML)
    rebuilt = read(z2)
    assert deps(z2) == (key, "no")
    log = log_text(m2, "aws", "nodejs-20", DYNAMIC_HTML)
    assert f"dependency layer {key[:12]} is damaged" in log
    assert "deps.zip does not match the SHA-256 recorded when it was built" in log
    assert zip_of(rebuilt).testzip() is None
    assert names(rebuilt) == names(good)
