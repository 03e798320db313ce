"""sebsfs-sebs-cache --containers: container entries (image URI and ID) that
a checker following SeBS's cache code finds current, with a real dockerd and
the loopback registry (docker suite)."""

import json

import pytest

import sebs_cache_checker as checker
from sebsfs_testlib import DYNAMIC_HTML, docker, read
from test_images import repo  # noqa: F401  (the fixture: a private repository, removed after)
from test_sebs_cache import fill


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
