"""Function images (SEBS.md section 7) through a real mount, a real dockerd and
a real loopback registry (scripts/services starts one; its address comes in
SEBSFS_REGISTRY).  Each test uses its own repository name, removed afterwards.
"""

import json
import os
import re
import time
import uuid

import pytest

from sebsfs_testlib import (DYNAMIC_HTML, append, builds, docker, function_tag, open_errno, read,
                            remove_images, run, state, xattr)

FIELDS = ["image", "id", "digest", "size", "built_at", "input_hash", "registry"]


@pytest.fixture
def repo():
    name = f"sebsfs-test/img{uuid.uuid4().hex[:10]}"
    yield name
    remove_images(name)


def document(m, platform, runtime, bench=DYNAMIC_HTML):
    raw = read(m.path(platform, runtime, f"{bench}.image"))
    assert raw.endswith(b"\n")
    doc = json.loads(raw)
    assert list(doc) == FIELDS
    return doc, raw


def test_image_files_listed_only_for_container_platforms(sebsfs, repo):
    m = sebsfs(options=("builder=host", f"repository={repo}"))
    for plat in ("aws", "gcp", "openwhisk"):
        listing = os.listdir(m.path(plat, "python-3.11"))
        assert f"{DYNAMIC_HTML}.image" in listing and f"{DYNAMIC_HTML}.image.log" in listing
    for plat in ("azure", "local"):
        assert not [n for n in os.listdir(m.path(plat, "python-3.11")) if ".image" in n]
    img = m.path("openwhisk", "python-3.11", f"{DYNAMIC_HTML}.image")
    assert os.stat(img).st_size == 0
    assert state(img) == "absent"  # listing and stat never build
    assert builds(img) == 0


def test_openwhisk_image_built_pushed_and_pullable(sebsfs, repo, registry):
    m = sebsfs(options=("builder=host", f"repository={repo}", f"registry={registry}"))
    img = m.path("openwhisk", "python-3.11", f"{DYNAMIC_HTML}.image")
    doc, raw = document(m, "openwhisk", "python-3.11")
    assert doc["image"] == f"{repo}:{function_tag('openwhisk', DYNAMIC_HTML, 'python-3.11')}"
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", doc["id"])
    assert doc["registry"] == registry
    assert re.fullmatch(rf"{re.escape(registry)}/{re.escape(repo)}@sha256:[0-9a-f]{{64}}", doc["digest"])
    assert doc["size"] > 0
    assert re.fullmatch(r"[0-9a-f]{64}", doc["input_hash"])
    assert os.stat(img).st_size == len(raw)
    assert builds(img) == 1
    # second read: from SQLite, no rebuild
    assert document(m, "openwhisk", "python-3.11")[1] == raw
    assert builds(img) == 1
    # what was pushed is what was built: pull it by digest after dropping local copies
    docker("rmi", "-f", doc["id"])
    docker("pull", doc["digest"])
    out = docker("run", "--rm", "--entrypoint", "ls", doc["digest"], "-R", "/function").stdout
    for f in ("function.py", "__main__.py", "storage.py", "template.html", "sebs_example_util"):
        assert f in out, f"{f} not in the image's /function:\n{out}"


def test_aws_nodejs_image_contains_function_and_dependencies(sebsfs, repo, registry):
    m = sebsfs(options=("builder=host", f"repository={repo}", f"registry={registry}"))
    doc, _ = document(m, "aws", "nodejs-20")
    assert doc["image"] == f"{repo}:{function_tag('aws', DYNAMIC_HTML, 'nodejs-20')}"
    assert doc["digest"].startswith(f"{registry}/{repo}@sha256:")
    # the pushed image, pulled back by digest, holds the function and its dependencies
    docker("rmi", "-f", doc["id"])
    docker("pull", doc["digest"])
    out = docker("run", "--rm", "--entrypoint", "find", doc["digest"], "/function").stdout
    assert "/function/function.js" in out and "/function/handler.js" in out
    assert "/function/node_modules/sebs-example-lib/index.js" in out
    assert ".sebsfs.Dockerfile.function" not in out


def test_image_named_as_sebs_with_prefix_and_prefix_change_rebuilds(sebsfs, repo, registry,
                                                                     tmp_path):
    """The image is pushed under the name user.sebs.image_tag announced before
    the build; another image_tag_prefix is another image (a rebuild)."""
    cache = tmp_path / "tagcache"
    opts = ("builder=host", f"repository={repo}", f"registry={registry}")
    m = sebsfs(cache=cache, options=opts + ("image_tag_prefix=first",))
    img = m.path("aws", "python-3.11", f"{DYNAMIC_HTML}.image")
    announced = xattr(img, "user.sebs.image_tag")
    tag = function_tag("aws", DYNAMIC_HTML, "python-3.11", prefix="first")
    assert announced == f"{registry}/{repo}:{tag}"
    assert builds(img) == 0
    doc, _ = document(m, "aws", "python-3.11")
    assert doc["image"] == f"{repo}:{tag}"
    assert xattr(img, "user.sebs.image_tag") == announced
    # SeBS looks for exactly that name in the registry
    pushed = run(["curl", "-fsS", f"http://{registry}/v2/{repo}/tags/list"]).stdout
    assert tag in json.loads(pushed)["tags"], pushed
    assert docker("manifest", "inspect", "--insecure", announced).returncode == 0
    m.stop()
    m = sebsfs(cache=cache, options=opts + ("image_tag_prefix=second",))
    img = m.path("aws", "python-3.11", f"{DYNAMIC_HTML}.image")
    second, _ = document(m, "aws", "python-3.11")
    assert second["image"] == f"{repo}:{function_tag('aws', DYNAMIC_HTML, 'python-3.11', 'second')}"
    assert second["input_hash"] != doc["input_hash"]
    assert builds(img) == 1


def test_unpushed_image_has_null_digest(sebsfs, repo):
    m = sebsfs(options=("builder=host", f"repository={repo}"))
    doc, _ = document(m, "aws", "python-3.10")
    assert doc["digest"] is None and doc["registry"] is None
    out = docker("run", "--rm", "--entrypoint", "find", doc["image"], "/function").stdout
    assert "/function/function.py" in out
    assert "sebs_example_util" in out


def test_dockerfile_edit_rebuilds_and_broken_dockerfile_fails(sebsfs, suite, repo):
    m = sebsfs(options=("builder=host", f"repository={repo}"))
    img = m.path("aws", "python-3.11", f"{DYNAMIC_HTML}.image")
    first, _ = document(m, "aws", "python-3.11")
    dockerfile = suite / "dockerfiles" / "aws" / "python" / "Dockerfile.function"
    append(dockerfile, "\nLABEL sebsfs.test=edited\n")
    second, _ = document(m, "aws", "python-3.11")
    assert builds(img) == 2
    assert second["id"] != first["id"]
    append(dockerfile, "\nRUN false\n")
    assert open_errno(img) == 5  # EIO
    log = read(m.path("aws", "python-3.11", f"{DYNAMIC_HTML}.image.log")).decode()
    assert "build failed" in log and "false" in log
    assert state(img) == "failed"
    # the previous good image is still what the row describes
    assert xattr(img, "user.sebs.input_hash") == second["input_hash"]


def test_refused_push_fails_the_open_and_keeps_the_built_image(sebsfs, repo):
    """With a registry configured, an image that could not be pushed is no
    good image: EIO, the log says why, nothing is recorded (the next read
    builds and pushes again), and the built image stays in the daemon.
    (The registry going down mid-push: test_faults_docker.py.)"""
    closed = "127.0.0.1:1"  # nothing listens there: the push is refused
    m = sebsfs(options=("builder=host", f"repository={repo}", f"registry={closed}"))
    img = m.path("openwhisk", "nodejs-20", f"{DYNAMIC_HTML}.image")
    assert open_errno(img) == 5  # EIO
    log = read(m.path("openwhisk", "nodejs-20", f"{DYNAMIC_HTML}.image.log")).decode()
    assert f"push to {closed} failed" in log
    assert "build failed" in log and "build succeeded" not in log
    assert state(img) == "failed"
    tag = function_tag("openwhisk", DYNAMIC_HTML, "nodejs-20")
    assert docker("image", "inspect", f"{repo}:{tag}").returncode == 0
    assert open_errno(img) == 5
    assert builds(img) == 2


def test_unlink_forgets_and_vanished_image_rebuilds(sebsfs, repo):
    m = sebsfs(options=("builder=host", f"repository={repo}"))
    img = m.path("gcp", "python-3.11", f"{DYNAMIC_HTML}.image")
    doc, _ = document(m, "gcp", "python-3.11")
    os.unlink(img)
    assert f"{DYNAMIC_HTML}.image" in os.listdir(m.path("gcp", "python-3.11"))
    assert state(img) == "absent"
    assert docker("image", "inspect", doc["image"], check=False).returncode != 0, \
        "unlink must remove the local tag"
    doc2, _ = document(m, "gcp", "python-3.11")
    assert builds(img) == 2
    # the image disappears from the daemon behind sebsfs's back: rebuilt
    docker("rmi", "-f", doc2["id"])
    time.sleep(2.5)  # the image-ID cache lives 2 s
    doc3, _ = document(m, "gcp", "python-3.11")
    assert builds(img) == 3
    assert docker("image", "inspect", doc3["image"]).returncode == 0


def test_vanished_pushed_image_is_pulled_back(sebsfs, repo, registry):
    m = sebsfs(options=("builder=host", f"repository={repo}", f"registry={registry}"))
    doc, _ = document(m, "openwhisk", "nodejs-20")
    docker("rmi", "-f", doc["id"])
    time.sleep(2.5)
    again, _ = document(m, "openwhisk", "nodejs-20")
    log = read(m.path("openwhisk", "nodejs-20", f"{DYNAMIC_HTML}.image.log")).decode()
    assert "pulling " + doc["digest"] in log
    assert again["id"] == doc["id"] and again["digest"] == doc["digest"]


def test_image_document_held_open_while_rebuilt_keeps_its_inode_and_bytes(sebsfs, suite, repo):
    """One inode per content (test_replaced_content.py) for .image files: a
    reader holding the old document reads all of it after a rebuild, the
    new opener gets the new document on a new inode."""
    m = sebsfs(options=("builder=host", f"repository={repo}"))
    img = m.path("aws", "python-3.11", f"{DYNAMIC_HTML}.image")
    first, raw_first = document(m, "aws", "python-3.11")
    a = os.open(img, os.O_RDONLY)
    try:
        dockerfile = suite / "dockerfiles" / "aws" / "python" / "Dockerfile.function"
        append(dockerfile, "\nLABEL sebsfs.test=edited-while-open\n")
        second, raw_second = document(m, "aws", "python-3.11")
        assert second["id"] != first["id"]
        assert os.pread(a, 1 << 20, 0) == raw_first
        assert os.fstat(a).st_size == len(raw_first)
        assert os.fstat(a).st_ino != os.stat(img).st_ino
        assert read(img) == raw_second
    finally:
        os.close(a)
