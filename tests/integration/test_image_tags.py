"""Function image names as SeBS makes them (sebs/config.py
benchmark_image_tag): user.sebs.image_tag on a .image file names the image
without building anything, -o image_tag_prefix= is validated at mount, and a
tag Docker cannot take fails the build with a clear log line.  No Docker
daemon is needed: nothing here builds an image."""

import errno
import os

import pytest

from sebsfs_testlib import (DYNAMIC_HTML, SLEEP, builds, edit_json, function_tag, one_line_error,
                            open_errno, read, run_sebsfs, state, wait_for, xattr)

REPO = "sebsfs-test/tags"
TREE_DELAY = 10.0  # seconds the tree watcher may take to see an edit (a bound, not a timing test)


def image(m, platform, runtime, bench=DYNAMIC_HTML):
    return m.path(platform, runtime, f"{bench}.image")


def test_image_tag_names_the_image_without_building(sebsfs):
    m = sebsfs(options=("builder=none", f"repository={REPO}"))
    for platform, runtime, bench in (("aws", "python-3.11", DYNAMIC_HTML),
                                     ("gcp", "nodejs-20", SLEEP),
                                     ("aws", "python-3.11-arm64", DYNAMIC_HTML)):
        img = image(m, platform, runtime, bench)
        want = f"{REPO}:{function_tag(platform, bench, runtime)}"
        assert xattr(img, "user.sebs.image_tag") == want
        assert "user.sebs.image_tag" in os.listxattr(img)
        assert state(img) == "absent" and builds(img) == 0
    # the SeBS form, spelled out once
    assert xattr(image(m, "aws", "python-3.11-arm64"), "user.sebs.image_tag") == \
        f"{REPO}:function.aws.{DYNAMIC_HTML}.python-3.11-arm64-1.2.1"
    # zips have no image
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert xattr(z, "user.sebs.image_tag") is None
    assert "user.sebs.image_tag" not in os.listxattr(z)


def test_image_tag_with_registry_and_prefix(sebsfs):
    registry = "127.0.0.1:5999/mirror"
    m = sebsfs(options=("builder=none", f"repository={REPO}", f"registry={registry}",
                        "image_tag_prefix=ci_run.7-b"))
    img = image(m, "openwhisk", "python-3.11")
    tag = function_tag("openwhisk", DYNAMIC_HTML, "python-3.11", prefix="ci_run.7-b")
    assert tag == f"function.openwhisk.{DYNAMIC_HTML}.python-3.11-x64-ci_run.7-b-1.2.1"
    assert xattr(img, "user.sebs.image_tag") == f"{registry}/{REPO}:{tag}"
    assert builds(img) == 0


def test_image_tag_follows_sebs_version_and_repository_of_the_tree(sebsfs, suite):
    sysjson = suite / "configs" / "systems.json"
    m = sebsfs(options=("builder=none",))
    img = image(m, "aws", "python-3.11")
    assert xattr(img, "user.sebs.image_tag") == \
        f"sebsfs/example-benchmarks:{function_tag('aws', DYNAMIC_HTML, 'python-3.11')}"
    edit_json(sysjson, lambda d: d["general"].update(SeBS_version="1.3.0"))
    want = f"sebsfs/example-benchmarks:function.aws.{DYNAMIC_HTML}.python-3.11-x64-1.3.0"
    assert wait_for(lambda: xattr(img, "user.sebs.image_tag") == want, TREE_DELAY), \
        xattr(img, "user.sebs.image_tag")
    # SeBS says "unknown" when systems.json has no version
    edit_json(sysjson, lambda d: d["general"].pop("SeBS_version"))
    want = want.replace("-1.3.0", "-unknown")
    assert wait_for(lambda: xattr(img, "user.sebs.image_tag") == want, TREE_DELAY), \
        xattr(img, "user.sebs.image_tag")
    # no repository anywhere: no name, and the build says why
    edit_json(sysjson, lambda d: d["general"].pop("docker_repository"))
    assert wait_for(lambda: xattr(img, "user.sebs.image_tag") is None, TREE_DELAY), \
        xattr(img, "user.sebs.image_tag")
    assert builds(img) == 0


@pytest.mark.parametrize("prefix", ["-dash", ".dot", "a/b", "a:b", "a b", "é", "x" * 129, ""])
def test_invalid_prefix_refused_at_mount(tmp_path, suite, prefix):
    r = run_sebsfs(tmp_path, "-f", "-o", f"image_tag_prefix={prefix}", suite, "@MNT@")
    one_line_error(r, "image_tag_prefix=", "[A-Za-z0-9_][A-Za-z0-9_.-]*")


def test_tag_too_long_for_docker_fails_the_build_with_a_clear_log(sebsfs):
    prefix = "p" * 100  # a valid tag part, but the whole tag passes 128 characters
    m = sebsfs(options=("builder=none", f"repository={REPO}", f"image_tag_prefix={prefix}"))
    img = image(m, "aws", "python-3.11")
    assert xattr(img, "user.sebs.image_tag") is None
    assert "user.sebs.image_tag" not in os.listxattr(img)
    assert open_errno(img) == errno.EIO
    log = read(m.path("aws", "python-3.11", f"{DYNAMIC_HTML}.image.log")).decode()
    tag = function_tag("aws", DYNAMIC_HTML, "python-3.11", prefix=prefix)
    assert f"image tag {tag} is {len(tag)} characters long; Docker allows at most 128" in log, log
