"""A java package (a .jar, which Maven makes in the build image: the
docker builder) through the remote cache (-o remote_cache, issue 12): the
first mount builds it and pushes it to a docker-registry of the test's own
on a loopback port, the second serves the same bytes without building.
Needs the Docker daemon and the Java build image (scripts/prepare-images);
the registry of the cache is the test's own, not the daemon's."""

import hashlib
import json
import subprocess
import urllib.request
import uuid

import pytest

from sebsfs_testlib import (DYNAMIC_HTML, PrivateRegistry, builds, docker, free_port, read, run,
                            systems, wait_for, xattr)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PLATFORM, RUNTIME = "aws", "java-17"
PUSH_TIMEOUT = 60


@pytest.fixture(autouse=True)
def java_build_image(suite):
    """The daemon answers and the Java build image exists; its name."""
    r = run(["docker", "version", "--format", "{{.Server.APIVersion}}"])
    assert r.returncode == 0, f"no Docker daemon (run scripts/services start): {r.stderr}"
    g = systems(suite)["general"]
    image = f"{g['docker_repository']}:build.{PLATFORM}.java.17-{g['SeBS_version']}"
    assert docker("image", "inspect", image, check=False).returncode == 0, \
        f"build image {image} missing (run scripts/prepare-images)"
    return image


@pytest.fixture
def reg(tmp_path):
    with PrivateRegistry(tmp_path / "registry", free_port()) as r:
        yield r


def manifest(reg, repo, tag):
    req = urllib.request.Request(f"http://{reg.addr}/v2/{repo}/manifests/{tag}",
                                 headers={"Accept": OCI_MANIFEST})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError:
        return None


def test_jar_through_the_remote_cache(sebsfs, tmp_path, reg, java_build_image):
    repo = f"sebsfs-test/cache{uuid.uuid4().hex[:10]}"
    empty = tmp_path / "docker-config-empty"
    empty.mkdir()
    # the daemon's credentials stay where they are; the cache's registry wants none
    env = {"DOCKER_CONFIG": str(empty)}

    def machine(name, mode=None):
        opts = ["builder=docker", f"remote_cache={reg.addr}/{repo}"]
        if mode:
            opts.append(f"remote_cache_mode={mode}")
        return sebsfs(cache=tmp_path / f"cache-{name}", options=tuple(opts), env=env)

    m1 = machine("one")
    jar1 = m1.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.jar")
    data = read(jar1)
    assert builds(jar1) == 1
    assert xattr(jar1, "user.sebs.origin") == "local"
    key = xattr(jar1, "user.sebs.input_hash")
    assert wait_for(lambda: manifest(reg, repo, key) is not None, PUSH_TIMEOUT, 0.2), m1.stderr()

    m = manifest(reg, repo, key)
    assert m["artifactType"] == "application/vnd.sebsfs.package.v1"
    assert len(m["layers"]) == 1
    layer = m["layers"][0]
    # a jar is a zip: the package media type, named as the mount names it
    assert layer["mediaType"] == "application/vnd.sebsfs.package.v1+zip"
    assert layer["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer["size"] == len(data)
    assert layer["annotations"]["org.opencontainers.image.title"] == f"{DYNAMIC_HTML}.jar"
    a = m["annotations"]
    assert a["org.sebsfs.platform"] == PLATFORM
    assert a["org.sebsfs.runtime"] == RUNTIME
    assert a["org.sebsfs.benchmark"] == DYNAMIC_HTML
    assert a["org.sebsfs.sha256"] == hashlib.sha256(data).hexdigest()
    image_id = docker("image", "inspect", "--format", "{{.Id}}", java_build_image).stdout.strip()
    assert f"language=java;version=17;arch=x64;builder=docker;image={java_build_image}@{image_id}" \
        in a["org.sebsfs.builder"], a["org.sebsfs.builder"]

    m2 = machine("two", mode="read")
    jar2 = m2.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.jar")
    got = read(jar2)
    assert got == data
    assert builds(jar2) == 0
    assert xattr(jar2, "user.sebs.origin") == "remote"
    assert xattr(jar2, "user.sebs.input_hash") == key
    log = read(m2.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.jar.log")).decode(errors="replace")
    assert "fetched from the remote cache" in log and "mvn" not in log, log
    # the copy on the second machine is a sound jar
    copy = tmp_path / "fetched.jar"
    copy.write_bytes(got)
    r = subprocess.run(["unzip", "-t", str(copy)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "No errors detected" in r.stdout, r.stdout + r.stderr
