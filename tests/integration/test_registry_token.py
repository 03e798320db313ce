"""Pushing function images to a registry with a bearer-token flow (issue
11): a private docker-registry with distribution's `auth: token` sends
dockerd to a token server (realm, service, scope in its `WWW-Authenticate:
Bearer` challenge), and dockerd comes back with `Authorization: Bearer`.
The token server is this test's own (http.server on 127.0.0.1): it gives
RS256 JWTs signed by `openssl dgst` with a key made by `openssl req -x509`,
whose self-signed certificate is the registry's rootcertbundle and rides in
the token's `x5c` header, the way distribution 2.8 finds the signing key.
It speaks both flows of dockerd's token client: GET with Basic credentials
(for a user and password; with offline_token=true, as `docker login` asks,
it adds a refresh token) and the OAuth2 POST (`grant_type=refresh_token`
for an identity token; `grant_type=password`), and records what it was
asked, so that the tests see which credentials sebsfs handed dockerd in
X-Registry-Auth: a credential helper's user and password, a helper's
`<token>` answer, the auths entry a real `docker login` wrote (its
identitytoken), or an auths entry's registrytoken (passed through without a
request)."""

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from registry_token_server import (ISSUER, PASSWORD, REFRESH_TOKEN, REFUSED, SERVICE, USER,
                                   TokenServer)
from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, PrivateRegistry, credential_helper, free_port,
                            docker, function_tag, mount_with_docker_config, open_errno, read,
                            run, state)

PLATFORM, RUNTIME = "openwhisk", "python-3.11"


@pytest.fixture
def token_server(tmp_path):
    with TokenServer(tmp_path) as server:
        yield server


@pytest.fixture
def token_registry(tmp_path, token_server):
    with PrivateRegistry(tmp_path / "token-registry", free_port(), token={
            "realm": token_server.realm, "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": str(token_server.cert)}) as reg:
        yield reg


@pytest.fixture(autouse=True)
def own_image(suite):
    """A benchmark source of this test's own, so that the image it builds
    has an ID no other test on the shared daemon removes (or shares)."""
    with open(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "function.py", "a") as f:
        f.write(f"# {uuid.uuid4().hex}\n")


@pytest.fixture
def helper_bin(tmp_path):
    bindir = tmp_path / "helper-bin"
    bindir.mkdir()
    return bindir


def registry_get(registry, path, token=None):
    """(status, JSON body or {}, WWW-Authenticate) of GET /v2/<path>."""
    req = urllib.request.Request(f"http://{registry.addr}/v2/{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read()), None
    except urllib.error.HTTPError as e:
        return e.code, {}, e.headers.get("WWW-Authenticate")


def registry_tags(token_server, registry, repo):
    status, doc, _ = registry_get(registry, f"{repo}/tags/list", token_server.token_for(repo))
    return status, doc.get("tags") or []


def image_log(m):
    return read(m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image.log")).decode()


def push(m):
    """Opens the image of 110.dynamic-html: its document, or the errno."""
    img = m.path(PLATFORM, RUNTIME, f"{DYNAMIC_HTML}.image")
    err = open_errno(img)
    return (json.loads(read(img)) if err is None else err), img


def asked_for_push(record, repo):
    """The token request asked for push and pull on repo, for the registry's
    service."""
    wanted = [s for s in record["scopes"] if s.startswith(f"repository:{repo}:")]
    return (record["service"] == SERVICE and len(wanted) == 1
            and set(wanted[0].rsplit(":", 1)[1].split(",")) == {"push", "pull"})


def assert_pushed(m, token_server, registry, repo):
    """Opening the image builds and pushes it: the registry has its tag.
    What the token server was asked until then (not the test's own request
    for the tag list)."""
    doc, img = push(m)
    assert isinstance(doc, dict), image_log(m)
    assert doc["digest"].startswith(f"{registry.addr}/{repo}@sha256:"), doc
    assert state(img) == "fresh"
    requests = token_server.seen()
    tag = function_tag(PLATFORM, DYNAMIC_HTML, RUNTIME)
    assert registry_tags(token_server, registry, repo) == (200, [tag])
    return requests


def test_registry_wants_a_bearer_token(token_server, token_registry, repo):
    """The registry really runs the token flow: a challenge naming the token
    server, no anonymous reads, a token of the server's accepted."""
    status, _, challenge = registry_get(token_registry, "_catalog")
    assert status == 401
    assert challenge.startswith("Bearer ") and f'realm="{token_server.realm}"' in challenge \
        and f'service="{SERVICE}"' in challenge, challenge
    status, _, challenge = registry_get(token_registry, f"{repo}/tags/list", token="not.a.jwt")
    assert status == 401 and 'error="invalid_token"' in challenge, challenge
    status, doc, _ = registry_get(token_registry, f"{repo}/tags/list",
                                  token_server.token_for(repo))
    assert status == 404 and doc == {}  # a valid token; the repository does not exist yet


def test_push_with_user_and_password_from_a_helper(sebsfs, tmp_path, helper_bin, token_server,
                                                    token_registry, repo):
    calls = tmp_path / "calls.log"
    credential_helper(helper_bin, "sebsfstoken", calls, token_registry.addr, USER, PASSWORD)
    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo,
                                 {"credsStore": "sebsfstoken"})
    requests = assert_pushed(m, token_server, token_registry, repo)
    assert f"get {token_registry.addr}" in calls.read_text().splitlines()
    # dockerd got the token with the user's Basic credentials, for this
    # repository and the registry's service, and used nothing else
    assert requests, "dockerd never asked the token server"
    assert all(r["grant"] == "basic" and r["user"] == USER and r["granted"]
               for r in requests), requests
    assert any(asked_for_push(r, repo) for r in requests), requests
    assert PASSWORD not in image_log(m) and PASSWORD not in m.stderr()


def test_an_image_gone_from_the_daemon_is_pulled_back_with_credentials(
        sebsfs, tmp_path, helper_bin, token_server, token_registry, repo):
    """A pushed image that left the daemon is pulled back by its digest
    instead of rebuilt; the registry wants a token for that pull too, got
    with the same credentials as the push."""
    credential_helper(helper_bin, "sebsfstoken", tmp_path / "calls.log", token_registry.addr,
                      USER, PASSWORD)
    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo,
                                 {"credsStore": "sebsfstoken"})
    assert_pushed(m, token_server, token_registry, repo)
    doc, img = push(m)
    m.stop()
    docker("rmi", "-f", doc["id"])
    # the same cache, from a new process that knows nothing of the daemon
    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo,
                                 {"credsStore": "sebsfstoken"})
    before = len(token_server.seen())
    again, _ = push(m)
    log = image_log(m)
    assert isinstance(again, dict), log
    assert f"image {doc['image']} is gone from the daemon; pulling {doc['digest']}" in log, log
    assert f"restored {doc['image']} from {doc['digest']}: no rebuild needed" in log, log
    assert again["digest"] == doc["digest"] and again["id"] == doc["id"], (doc, again)
    pulls = token_server.seen()[before:]
    assert pulls and all(r["grant"] == "basic" and r["user"] == USER and r["granted"]
                         for r in pulls), pulls
    assert any(f"repository:{repo}:pull" in r["scopes"] for r in pulls), pulls
    assert PASSWORD not in log and PASSWORD not in m.stderr()


def assert_refresh_grants_only(requests, repo, identity_token):
    """dockerd got its tokens by the OAuth2 refresh-token grant with
    identity_token, never with Basic credentials."""
    dockerd = [r for r in requests if r["method"] == "POST"]
    assert dockerd and len(dockerd) == len(requests), requests
    assert all(r["grant"] == "refresh_token" and r["refresh_token"] == identity_token
               and r["client_id"] and r["granted"] for r in dockerd), dockerd
    assert any(asked_for_push(r, repo) for r in dockerd), dockerd


def test_push_with_an_identity_token_from_a_helper(sebsfs, tmp_path, helper_bin, token_server,
                                                   token_registry, repo):
    """A helper's `<token>` answer is an identity token: dockerd runs the
    refresh-token grant with it."""
    credential_helper(helper_bin, "sebsfstoken", tmp_path / "calls.log", token_registry.addr,
                      "<token>", REFRESH_TOKEN)
    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo,
                                 {"credHelpers": {token_registry.addr: "sebsfstoken"}})
    requests = assert_pushed(m, token_server, token_registry, repo)
    assert_refresh_grants_only(requests, repo, REFRESH_TOKEN)
    assert REFRESH_TOKEN not in image_log(m) and REFRESH_TOKEN not in m.stderr()


def test_push_with_the_identity_token_of_docker_login(sebsfs, tmp_path, helper_bin, token_server,
                                                      token_registry, repo):
    """`docker login` to a token registry (dockerd asks for a token with
    Basic credentials and offline_token=true) stores the refresh token it
    got as the auths entry's identitytoken, beside "auth" of "user:";
    sebsfs pushes with that entry."""
    login_config = tmp_path / "login-config"
    login_config.mkdir()
    (login_config / "config.json").write_text("{}")
    r = run(["docker", "--config", str(login_config), "login", "--username", USER,
             "--password-stdin", token_registry.addr], input=PASSWORD)
    assert r.returncode == 0, r.stderr
    config = json.loads((login_config / "config.json").read_text())
    entry = config["auths"][token_registry.addr]
    identity_token = entry.get("identitytoken")
    assert identity_token and identity_token != REFRESH_TOKEN, entry
    assert base64.b64decode(entry["auth"]).decode() == f"{USER}:", "login kept the password"
    login = token_server.seen()
    assert [(q["grant"], q["user"], q["offline"], q["granted"]) for q in login] == \
        [("basic", USER, True, True)], login

    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo, config)
    requests = assert_pushed(m, token_server, token_registry, repo)[len(login):]
    assert_refresh_grants_only(requests, repo, identity_token)
    assert identity_token not in image_log(m) and identity_token not in m.stderr()


def test_push_with_a_registry_token(sebsfs, tmp_path, helper_bin, token_server, token_registry,
                                    repo):
    """An auths entry's registrytoken goes to the registry as it is: dockerd
    asks the token server nothing."""
    bearer = token_server.token_for(repo, "push,pull")
    before = len(token_server.seen())
    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo,
                                 {"auths": {token_registry.addr: {"registrytoken": bearer}}})
    requests = assert_pushed(m, token_server, token_registry, repo)
    assert requests[before:] == [], requests[before:]
    assert bearer not in image_log(m) and bearer not in m.stderr()


@pytest.mark.parametrize("secret", ["password", "identitytoken"])
def test_refused_credentials_fail_the_push(sebsfs, tmp_path, helper_bin, token_server,
                                           token_registry, repo, secret):
    wrong = f"wrong-{secret}-9d0c7e-not-in-any-log"
    if secret == "password":
        credential_helper(helper_bin, "sebsfstoken", tmp_path / "calls.log", token_registry.addr,
                          USER, wrong)
        config = {"credsStore": "sebsfstoken"}
    else:
        config = {"auths": {token_registry.addr: {"identitytoken": wrong}}}
    m = mount_with_docker_config(sebsfs, tmp_path, helper_bin, token_registry.addr, repo, config)
    err, img = push(m)
    assert err == 5  # EIO
    log = image_log(m)
    failed = [line for line in log.splitlines()
              if f"push to {token_registry.addr} failed" in line]
    assert failed, log
    # the token server's reason, as dockerd reports it
    assert f"unauthorized: {REFUSED}" in failed[-1], failed[-1]
    assert state(img) == "failed"
    requests = token_server.seen()
    assert requests and not any(r["granted"] for r in requests), requests
    if secret == "password":
        assert all(r["grant"] == "basic" and r["user"] == USER for r in requests), requests
    else:
        assert all(r["grant"] == "refresh_token" and r["refresh_token"] == wrong
                   for r in requests), requests
    assert wrong not in log and wrong not in m.stderr()
    assert registry_tags(token_server, token_registry, repo) == (404, [])
