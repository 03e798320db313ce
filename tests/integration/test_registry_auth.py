"""Pushing function images to a registry that wants a login (issue 11): a
private docker-registry with htpasswd auth (a bcrypt entry made by
`htpasswd -B`) on a loopback port of its own, and credentials that come, as
with Docker's own clients, from a credential helper named in the
DOCKER_CONFIG's credsStore or credHelpers: a program
docker-credential-<name> that this test writes into a folder on the mount's
PATH.  The shared dockerd pushes (127.0.0.0/8 is an insecure registry by
default, so plain HTTP is fine); the registry is stopped at the end."""

import base64
import json
import subprocess
import urllib.error
import urllib.request

import pytest

from sebsfs_testlib import (DYNAMIC_HTML, PrivateRegistry, credential_helper, free_port,
                            function_tag, install_credential_helper, mount_with_docker_config,
                            open_errno, read, state, xattr)

USER = "sebsfs-pusher"
PASSWORD = "pw-7f3e9c1d-not-in-any-log"
PLATFORM, RUNTIME = "openwhisk", "python-3.11"

BROKEN_HELPER = """#!/usr/bin/python3
import sys
sys.stdin.read()
print("the keychain is locked", file=sys.stderr)
sys.exit(4)
"""


@pytest.fixture
def auth_registry(tmp_path):
    base = tmp_path / "auth-registry"
    base.mkdir()
    htpasswd = base / "htpasswd"
    # -i: the password from stdin, not from argv
    r = subprocess.run(["htpasswd", "-B", "-i", "-c", str(htpasswd), USER], input=PASSWORD,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert htpasswd.read_text().startswith(f"{USER}:$2y$")  # bcrypt, what the registry takes
    with PrivateRegistry(base, free_port(), htpasswd=htpasswd) as reg:
        yield reg


@pytest.fixture
def helpers(tmp_path, auth_registry):
    """A folder of credential helpers (for PATH) and the log of their calls."""
    bindir = tmp_path / "helper-bin"
    bindir.mkdir()
    calls = tmp_path / "calls.log"
    credential_helper(bindir, "sebsfstest", calls, auth_registry.addr, USER, PASSWORD)
    install_credential_helper(bindir, "sebsfsbroken", BROKEN_HELPER)
    return bindir, calls


def mount_with(sebsfs, tmp_path, helpers, registry, repo, config):
    """A mount whose Docker config is config and whose PATH has the helpers."""
    return mount_with_docker_config(sebsfs, tmp_path, helpers[0], registry.addr, repo, config)


def registry_tags(registry, repo, login):
    req = urllib.request.Request(f"http://{registry.addr}/v2/{repo}/tags/list")
    if login:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()).get("tags") or []
    except urllib.error.HTTPError as e:
        return e.code, []


def image_log(m):
    return read(m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image.log")).decode()


def no_secret_anywhere(m):
    assert PASSWORD not in image_log(m)
    assert PASSWORD not in m.stderr()


@pytest.mark.parametrize("config_of", [
    lambda addr: {"credsStore": "sebsfstest"},
    # the registry's own helper wins over the default store
    lambda addr: {"credsStore": "sebsfs-not-installed", "credHelpers": {addr: "sebsfstest"}},
], ids=["credsStore", "credHelpers"])
def test_push_with_credentials_from_a_helper(sebsfs, tmp_path, helpers, auth_registry, repo,
                                             config_of):
    m = mount_with(sebsfs, tmp_path, helpers, auth_registry, repo, config_of(auth_registry.addr))
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    tag = function_tag(PLATFORM, DYNAMIC_HTML, RUNTIME)
    assert xattr(img, "user.sebs.image_tag") == f"{auth_registry.addr}/{repo}:{tag}"
    doc = json.loads(read(img))
    assert doc["digest"].startswith(f"{auth_registry.addr}/{repo}@sha256:"), doc
    # the registry holds the tag, and only shows it to a login
    assert registry_tags(auth_registry, repo, login=True) == (200, [tag])
    assert registry_tags(auth_registry, repo, login=False)[0] == 401
    # the helper was asked as Docker asks it
    _, calls = helpers
    assert f"get {auth_registry.addr}" in calls.read_text().splitlines()
    assert state(img) == "fresh"
    no_secret_anywhere(m)


def test_push_without_credentials_fails_clearly(sebsfs, tmp_path, helpers, auth_registry, repo):
    m = mount_with(sebsfs, tmp_path, helpers, auth_registry, repo, {"auths": {}})
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    assert open_errno(img) == 5  # EIO
    log = image_log(m)
    assert f"no credentials for {auth_registry.addr}" in log and "pushing anonymously" in log, log
    push = [line for line in log.splitlines() if f"push to {auth_registry.addr} failed" in line]
    assert push, log
    assert "no basic auth credentials" in push[0], push[0]  # dockerd's words
    assert state(img) == "failed"
    assert registry_tags(auth_registry, repo, login=True) == (404, [])
    m.stop()
    # a wrong password (a static auths entry) is refused by the registry
    wrong = base64.b64encode(f"{USER}:not-the-password".encode()).decode()
    m = mount_with(sebsfs, tmp_path, helpers, auth_registry, repo,
                   {"auths": {auth_registry.addr: {"auth": wrong}}})
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    assert open_errno(img) == 5
    log = image_log(m)
    push = [line for line in log.splitlines() if f"push to {auth_registry.addr} failed" in line]
    assert push and "unauthorized" in push[-1], log
    assert "not-the-password" not in log
    assert registry_tags(auth_registry, repo, login=True) == (404, [])


def test_helper_that_fails_or_is_missing_fails_the_push(sebsfs, tmp_path, helpers, auth_registry,
                                                        repo):
    m = mount_with(sebsfs, tmp_path, helpers, auth_registry, repo,
                   {"credHelpers": {auth_registry.addr: "sebsfsbroken"}})
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    assert open_errno(img) == 5  # EIO
    log = image_log(m)
    assert (f"push to {auth_registry.addr} failed: credential helper docker-credential-sebsfsbroken"
            f" get failed for {auth_registry.addr} (exit status 4): the keychain is locked") in log, \
        log
    assert "pushing anonymously" not in log
    m.stop()

    m = mount_with(sebsfs, tmp_path, helpers, auth_registry, repo,
                   {"credsStore": "sebsfs-not-installed"})
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    assert open_errno(img) == 5
    log = image_log(m)
    assert ("credential helper docker-credential-sebsfs-not-installed (the Docker config's"
            f" credHelpers or credsStore for {auth_registry.addr}) is not installed") in log, log
    assert registry_tags(auth_registry, repo, login=True) == (404, [])
