"""sebsfs-sebs-cache: a SeBS cache folder filled from a real mount is read
back by sebs_cache_checker (which decides as SeBS's Cache and
Benchmark.query_cache do) and every entry is current; SeBS's own entries
survive; runs are idempotent; filters hold; a failed build keeps the old
entry; azure/local folders equal the unzipped package."""

import errno
import io
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

import sebs_cache_checker as checker
from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, open_errno, read,
                            sebsfs_bin, state, xattr)

CODE_PLATFORMS = ["aws", "azure", "gcp", "local"]
RUNTIMES = {"python-3.11": ("python", "3.11"), "nodejs-20": ("nodejs", "20")}
SEBS_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$")
FAILING_INIT = "#!/bin/bash\necho 'data download failed: boom-marker' >&2\nexit 1\n"


def tool_bin():
    b = os.environ.get("SEBSFS_SEBS_CACHE_BIN") or str(
        Path(sebsfs_bin()).parents[1] / "tools" / "sebsfs-sebs-cache")
    if not os.access(b, os.X_OK):
        pytest.fail(f"sebsfs-sebs-cache not found or not executable: {b} "
                    "(set SEBSFS_SEBS_CACHE_BIN)")
    return b


def fill(mount, cache, *args, expect=0):
    r = subprocess.run([tool_bin(), *args, str(mount.mnt), str(cache)], capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == expect, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def package_variants(platform):
    """The SeBS deployment variants that deploy a code package."""
    return ["function-gen1", "function-gen2"] if platform == "gcp" else ["package"]


def verdict(cache, suite, platform, bench, runtime, variant):
    language, version = RUNTIMES[runtime]
    return checker.query(str(cache), str(suite), platform, bench, language, version, "x64",
                         variant)


def tree_of(root):
    """{relative path: bytes | ("link", target) | "dir"} of a folder."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes()
    return out


def unzip_tree(data, dest):
    """The package extracted with Python's zipfile (symlinks as symlinks)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            target = dest / info.filename
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif (mode & 0o170000) == 0o120000:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(z.read(info).decode(), target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(info))
    return tree_of(dest)


def leftovers(cache):
    return [str(p) for p in Path(cache).rglob("*")
            if ".sebsfs-tmp" in p.name or ".tmp." in p.name]


def test_filled_cache_is_current_for_sebs(mount, suite, tmp_path):
    cache = tmp_path / "sebs-cache"
    r = fill(mount, cache, "--benchmark", DYNAMIC_HTML, "--runtime", "python-3.11",
             "--runtime", "nodejs-20")
    assert "0 failed" in r.stderr

    config = json.loads((cache / DYNAMIC_HTML / "config.json").read_text())
    # openwhisk deploys an image and its zip together: only with --containers
    assert sorted(config) == CODE_PLATFORMS
    for platform in CODE_PLATFORMS:
        for runtime, (language, version) in RUNTIMES.items():
            z = mount.zip(platform, runtime, DYNAMIC_HTML)
            mounted_zip = read(z)
            mounted_hash = xattr(z, "user.sebs.sebs_hash")
            for variant in package_variants(platform):
                v = verdict(cache, suite, platform, DYNAMIC_HTML, runtime, variant)
                assert v.current, f"{platform}/{runtime} {variant}: {v}"
                # the checker's Python hash_directory and sebsfs's C one agree
                assert v.current_hash == mounted_hash
                entry = v.entry
                assert not os.path.isabs(entry["location"])
                assert SEBS_DATE.match(entry["date"]["created"]), entry
                assert entry["date"]["created"] == entry["date"]["modified"]
                loc = Path(v.location)
                if platform in ("aws", "gcp"):
                    assert loc.name == f"{DYNAMIC_HTML}.zip"
                    assert loc.read_bytes() == mounted_zip
                    assert entry["size"] == len(mounted_zip)
                else:
                    assert loc.name == "code" and loc.is_dir()
                    expected = unzip_tree(mounted_zip, tmp_path / f"unzip-{platform}-{runtime}")
                    assert tree_of(loc) == expected
                    if platform == "azure":
                        assert isinstance(entry["size"], float)
                        assert entry["size"] == pytest.approx(checker.directory_size(loc),
                                                              rel=1e-12)
                    else:
                        assert entry["size"] == os.path.getsize(loc)
            # SeBS's key layout, per language: code_package, containers, functions
            lang_cfg = config[platform][language]
            assert set(lang_cfg) == {"code_package", "containers", "functions"}
    assert leftovers(cache) == []


def test_checker_sees_a_changed_source(mount, suite, tmp_path):
    # the checker can say "not current": a source edit after filling
    cache = tmp_path / "sebs-cache"
    fill(mount, cache, "--benchmark", DYNAMIC_HTML, "--platform", "aws",
         "--runtime", "python-3.11")
    assert verdict(cache, suite, "aws", DYNAMIC_HTML, "python-3.11", "package").current
    with open(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "function.py", "a") as f:
        f.write("\n# edited\n")
    v = verdict(cache, suite, "aws", DYNAMIC_HTML, "python-3.11", "package")
    assert v.is_cached and not v.is_cached_valid
    z = mount.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert xattr(z, "user.sebs.sebs_hash") == v.current_hash
    # filling again makes it current
    fill(mount, cache, "--benchmark", DYNAMIC_HTML, "--platform", "aws",
         "--runtime", "python-3.11")
    assert verdict(cache, suite, "aws", DYNAMIC_HTML, "python-3.11", "package").current


def test_merge_keeps_sebs_entries(mount, suite, tmp_path):
    cache = tmp_path / "sebs-cache"
    bench_dir = cache / DYNAMIC_HTML
    bench_dir.mkdir(parents=True)
    old_pkg = bench_dir / "aws/python/code_package/default/3.10/x64/110.dynamic-html.zip"
    old_pkg.parent.mkdir(parents=True)
    old_pkg.write_bytes(b"SeBS's own 3.10 package")
    theirs = {
        "aws": {
            "python": {
                "code_package": {"default": {
                    "3.10": {"x64": {
                        "size": 23, "hash": "f" * 32,
                        "location": str(old_pkg.relative_to(cache)),
                        "date": {"created": "2025-01-01 10:00:00.000001",
                                 "modified": "2025-01-01 10:00:00.000001"}}},
                    "3.11": {"x64": {
                        "size": 1, "hash": "0" * 32, "location": "stale/location.zip",
                        "note": "a key SeBS may add later",
                        "date": {"created": "2025-02-02 12:00:00",
                                 "modified": "2025-02-02 12:00:00"}}}}},
                "containers": {},
                "functions": {"sebs-110-python-3-11": {"name": "sebs-110-python-3-11",
                                                       "hash": "0" * 32, "config": {}}},
            },
            "nodejs": {"code_package": {}, "containers": {},
                       "functions": {"fn-node": {"name": "fn-node"}}},
            "storage": {"buckets": {"input": ["in-0"], "output": ["out-0"]}},
            "nosql": {"tables": {"t": "sebs-t"}},
        },
        "openwhisk": {"python": {"functions": {"ow-fn": {"name": "ow-fn"}}}},
    }
    (bench_dir / "config.json").write_text(json.dumps(theirs, indent=2))
    (cache / "aws.json").write_text('{"resources": {"kept": true}}')

    fill(mount, cache, "--benchmark", DYNAMIC_HTML, "--platform", "aws",
         "--platform", "azure", "--runtime", "python-3.11")

    config = json.loads((bench_dir / "config.json").read_text())
    aws = config["aws"]
    assert aws["storage"] == theirs["aws"]["storage"]
    assert aws["nosql"] == theirs["aws"]["nosql"]
    assert aws["nodejs"] == theirs["aws"]["nodejs"]
    assert aws["python"]["functions"] == theirs["aws"]["python"]["functions"]
    assert aws["python"]["code_package"]["default"]["3.10"] == \
        theirs["aws"]["python"]["code_package"]["default"]["3.10"]
    assert old_pkg.read_bytes() == b"SeBS's own 3.10 package"
    assert config["openwhisk"] == theirs["openwhisk"]
    assert (cache / "aws.json").read_text() == '{"resources": {"kept": true}}'

    entry = aws["python"]["code_package"]["default"]["3.11"]["x64"]
    assert entry["note"] == "a key SeBS may add later"
    assert entry["date"]["created"] == "2025-02-02 12:00:00"
    assert entry["date"]["modified"] != "2025-02-02 12:00:00"
    assert SEBS_DATE.match(entry["date"]["modified"])
    for platform in ("aws", "azure"):
        v = verdict(cache, suite, platform, DYNAMIC_HTML, "python-3.11", "package")
        assert v.current, f"{platform}: {v}"


def test_second_run_is_idempotent(mount, suite, tmp_path):
    cache = tmp_path / "sebs-cache"
    args = ("--benchmark", COMPRESSION, "--runtime", "python-3.11")
    fill(mount, cache, *args)
    first = json.loads((cache / COMPRESSION / "config.json").read_text())
    files_first = tree_of(cache)
    fill(mount, cache, *args)
    second = json.loads((cache / COMPRESSION / "config.json").read_text())
    files_second = tree_of(cache)

    def without_modified(cfg):
        text = json.dumps(cfg, sort_keys=True)
        return re.sub(r'"modified": "[^"]*"', '"modified": ""', text)

    assert without_modified(first) == without_modified(second)
    assert {k: v for k, v in files_first.items() if not k.endswith("config.json")} == \
        {k: v for k, v in files_second.items() if not k.endswith("config.json")}
    assert leftovers(cache) == []
    for platform in CODE_PLATFORMS:
        for variant in package_variants(platform):
            assert verdict(cache, suite, platform, COMPRESSION, "python-3.11", variant).current


def test_filters_and_dry_run(mount, suite, tmp_path):
    cache = tmp_path / "sebs-cache"
    z = mount.zip("gcp", "nodejs-20", DYNAMIC_HTML)
    r = fill(mount, cache, "--dry-run", "--platform", "gcp", "--runtime", "nodejs-20",
             "--benchmark", DYNAMIC_HTML)
    assert not cache.exists(), "a dry run writes nothing"
    assert state(z) == "absent", "a dry run builds nothing"
    assert "gen1/20/x64/110.dynamic-html.zip" in r.stdout
    assert "gen2/20/x64/110.dynamic-html.zip" in r.stdout

    fill(mount, cache, "--platform", "gcp", "--runtime", "nodejs-20",
         "--benchmark", DYNAMIC_HTML)
    assert sorted(p.name for p in cache.iterdir()) == [DYNAMIC_HTML]
    config = json.loads((cache / DYNAMIC_HTML / "config.json").read_text())
    assert sorted(config) == ["gcp"]
    assert sorted(config["gcp"]) == ["nodejs"]
    gens = config["gcp"]["nodejs"]["code_package"]["default"]
    assert sorted(gens) == ["gen1", "gen2"]
    assert all(sorted(gens[g]) == ["20"] for g in gens)
    # nothing else was built
    assert state(mount.zip("aws", "nodejs-20", DYNAMIC_HTML)) == "absent"
    assert state(mount.zip("gcp", "python-3.11", DYNAMIC_HTML)) == "absent"


def test_failed_build_keeps_previous_entry(mount, suite, tmp_path):
    cache = tmp_path / "sebs-cache"
    args = ("--platform", "aws", "--platform", "local", "--runtime", "python-3.11")
    fill(mount, cache, *args)
    cfg_path = cache / COMPRESSION / "config.json"
    before = cfg_path.read_text()
    pkg = cache / COMPRESSION / "aws/python/code_package/default/3.11/x64" / f"{COMPRESSION}.zip"
    pkg_before = pkg.read_bytes()
    code_before = tree_of(cache / COMPRESSION / "local/python/code_package/default/3.11/x64/code")

    # the data step is outside what SeBS hashes: the build fails, the hash stays
    (suite / BENCH_DIRS[COMPRESSION] / "init.sh").write_text(FAILING_INIT)
    assert open_errno(mount.zip("aws", "python-3.11", COMPRESSION)) == errno.EIO
    # a change the other benchmark's entries must pick up in the same run
    with open(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "function.py", "a") as f:
        f.write("\n# edited\n")

    r = fill(mount, cache, *args, expect=1)
    assert f"aws/python-3.11/{COMPRESSION}.zip" in r.stderr
    assert f"local/python-3.11/{COMPRESSION}.zip" in r.stderr
    assert "build failed" in r.stderr
    assert "2 failed" in r.stderr
    assert cfg_path.read_text() == before
    assert pkg.read_bytes() == pkg_before
    assert tree_of(cache / COMPRESSION / "local/python/code_package/default/3.11/x64/code") == \
        code_before
    assert leftovers(cache) == []
    # the run went on: the other benchmark is current with its edit
    for platform in ("aws", "local"):
        assert verdict(cache, suite, platform, DYNAMIC_HTML, "python-3.11", "package").current


def test_usage_errors(tmp_path):
    def run(*args):
        return subprocess.run([tool_bin(), *args], capture_output=True, text=True, timeout=30)

    r = run("--help")
    assert r.returncode == 0 and "MOUNT SEBS_CACHE_DIR" in r.stdout
    r = run()
    assert r.returncode == 2 and "expected MOUNT and SEBS_CACHE_DIR" in r.stderr
    r = run("--no-such-option", str(tmp_path), str(tmp_path / "c"))
    assert r.returncode == 2
    r = run(str(tmp_path / "missing"), str(tmp_path / "c"))
    assert r.returncode == 2 and "not a folder" in r.stderr
    assert not (tmp_path / "c").exists()


def test_not_a_sebsfs_mount(tmp_path):
    # a package without user.sebs.sebs_hash is refused, nothing is written
    fake = tmp_path / "fake" / "aws" / "python-3.11"
    fake.mkdir(parents=True)
    (fake / "x.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    cache = tmp_path / "c"
    r = subprocess.run([tool_bin(), str(tmp_path / "fake"), str(cache)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r.stderr
    assert "user.sebs.sebs_hash" in r.stderr
    assert not (cache / "x" / "config.json").exists()


def test_tree_change_during_the_copy_is_retried(mount, suite, tmp_path):
    # The benchmark's data step edits a file SeBS hashes, once, while the
    # package builds: the hash read after the copy differs from the one read
    # before, so that copy is dropped and the package read again (it is then
    # rebuilt from the edited tree).  The recorded hash matches the tree.
    bench_dir = suite / BENCH_DIRS[COMPRESSION]
    marker = tmp_path / "edited-once"
    init = bench_dir / "init.sh"
    init.write_text(init.read_text() + f"""
if [ ! -e '{marker}' ]; then
    touch '{marker}'
    echo '# edited during the build' >> '{bench_dir / "python" / "function.py"}'
fi
""")
    cache = tmp_path / "sebs-cache"
    fill(mount, cache, "--benchmark", COMPRESSION, "--platform", "aws",
         "--runtime", "python-3.11")
    assert marker.exists()
    v = verdict(cache, suite, "aws", COMPRESSION, "python-3.11", "package")
    assert v.current, v
    data = Path(v.location).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert b"# edited during the build" in z.read("function/function.py")
    assert leftovers(cache) == []

