"""sebsfs-sebs-cache with what needs Docker (docker suite): --containers
entries (image URI and ID) with a real dockerd and the loopback registry, and
the java and cpp packages the build containers make; a checker following
SeBS's cache code finds them current (and its hash_directory agrees with
user.sebs.sebs_hash for java and cpp too)."""

import json

import pytest

import sebs_cache_checker as checker
from sebsfs_testlib import DYNAMIC_HTML, SLEEP, docker, read, xattr
from test_images import repo  # noqa: F401  (the fixture: a private repository, removed after)
from test_sebs_cache import fill, tree_of, unzip_tree


def test_container_entries_are_current(sebsfs, suite, repo, registry, tmp_path):
    m = sebsfs(options=("builder=host", f"repository={repo}", f"registry={registry}"))
    cache = tmp_path / "sebs-cache"
    fill(m, cache, "--containers", "--benchmark", DYNAMIC_HTML, "--runtime", "python-3.11",
         "--platform", "aws", "--platform", "gcp", "--platform", "openwhisk")

    for platform in ("aws", "gcp", "openwhisk"):
        doc = json.loads(read(m.path(platform, "python-3.11", f"{DYNAMIC_HTML}.image")))
        v = checker.query(str(cache), str(suite), platform, DYNAMIC_HTML, "python", "3.11",
                          "x64", "container")
        assert v.current, f"{platform}: {v}"
        entry = v.entry
        assert entry["image-id"] == doc["id"]
        if platform == "gcp":
            assert entry["image-uri"] == doc["digest"]   # SeBS resolves gcp to the digest
        else:
            assert entry["image-uri"] == f"{registry}/{doc['image']}"
        # SeBS's add_code_package asks the daemon for the image by that URI
        inspected = docker("image", "inspect", "--format", "{{.Id}}", entry["image-uri"])
        assert inspected.stdout.strip() == doc["id"]
        if platform == "openwhisk":
            z = read(m.zip("openwhisk", "python-3.11", DYNAMIC_HTML))
            assert v.location.endswith(
                f"{DYNAMIC_HTML}/openwhisk/python/containers/default/3.11/x64/{DYNAMIC_HTML}.zip")
            with open(v.location, "rb") as f:
                assert f.read() == z
            assert entry["size"] == len(z)
        else:
            assert "location" not in entry
            assert entry["size"] == pytest.approx(doc["size"] / 1024.0 / 1024.0, rel=1e-12)
    # code packages of aws and gcp stay beside them; openwhisk has none
    for platform, variant in (("aws", "package"), ("gcp", "function-gen1")):
        assert checker.query(str(cache), str(suite), platform, DYNAMIC_HTML, "python", "3.11",
                             "x64", variant).current
    config = json.loads((cache / DYNAMIC_HTML / "config.json").read_text())
    assert config["openwhisk"]["python"]["code_package"] == {}


def test_java_and_cpp_packages_are_current(sebsfs, suite, tmp_path):
    m = sebsfs(options=("builder=docker",))
    cache = tmp_path / "sebs-cache"
    fill(m, cache, "--benchmark", SLEEP, "--benchmark", "503.graph-bfs",
         "--runtime", "java-17", "--runtime", "cpp-all",
         "--platform", "aws", "--platform", "azure", "--platform", "gcp")
    cases = [("aws", "java-17", SLEEP, "jar", "function.jar"),
             ("aws", "cpp-all", "503.graph-bfs", "zip", "benchmark.zip"),
             ("gcp", "java-17", SLEEP, "zip", f"{SLEEP}.zip"),
             ("azure", "java-17", SLEEP, "zip", "code")]
    for platform, runtime, bench, ext, name in cases:
        language, version = runtime.split("-")
        package = m.path(platform, runtime, f"{bench}.{ext}")
        data = read(package)
        variant = "function-gen1" if platform == "gcp" else "package"
        v = checker.query(str(cache), str(suite), platform, bench, language, version, "x64",
                          variant)
        assert v.current, f"{platform}/{runtime}/{bench}: {v}"
        assert v.current_hash == xattr(package, "user.sebs.sebs_hash")
        assert v.location.endswith(
            f"{bench}/{platform}/{language}/code_package/default/"
            f"{'gen1/' if platform == 'gcp' else ''}{version}/x64/{name}")
        if name == "code":
            assert tree_of(v.location) == unzip_tree(data, tmp_path / f"unzip-{platform}")
        else:
            with open(v.location, "rb") as f:
                assert f.read() == data
            assert v.entry["size"] == len(data)
