"""The shared build cache in an OCI registry (-o remote_cache, issue 12):
two mounts with cache folders of their own stand for two machines, and a
docker-registry of the test's own on a loopback port (no dockerd involved)
is the registry they share.  The first builds and pushes in the background;
the second serves the same bytes without building.  A blob tampered with in
the registry's storage, a registry that is down, and the read / write modes
are checked through the same mounts; the manifest is checked with plain HTTP
against the OCI image spec's fields, and through skopeo (Debian's; oras and
crane are not packaged)."""

import base64
import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest

from sebsfs_testlib import (DYNAMIC_HTML, PrivateRegistry, builds, free_port, log_text, read,
                            wait_for, xattr)

PLATFORM, RUNTIME = "aws", "python-3.11"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_DIGEST = "sha256:" + hashlib.sha256(b"{}").hexdigest()
PUSH_TIMEOUT = 60
USER = "sebsfs-cache-writer"
PASSWORD = "pw-0d3b1c9e-not-in-any-log"


def start_registry(tmp_path, name, htpasswd=None):
    base = tmp_path / name
    base.mkdir()
    reg = PrivateRegistry(base, free_port(), htpasswd=htpasswd)
    reg.start()
    return reg


@pytest.fixture
def reg(tmp_path):
    r = start_registry(tmp_path, "registry")
    yield r
    r.stop()


@pytest.fixture
def repo():
    return f"sebsfs-test/cache{uuid.uuid4().hex[:10]}"


@pytest.fixture
def no_credentials(tmp_path):
    """A DOCKER_CONFIG without a config.json: this machine's own Docker
    credentials stay out of the tests."""
    d = tmp_path / "docker-config-empty"
    d.mkdir()
    return {"DOCKER_CONFIG": str(d)}


def get(reg, path, accept=None, auth=None):
    """(status, headers, body) of GET http://<reg>/v2/<path>."""
    headers = {"Accept": accept} if accept else {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    req = urllib.request.Request(f"http://{reg.addr}/v2/{path}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def tag_present(reg, repo, tag, auth=None):
    return get(reg, f"{repo}/manifests/{tag}", OCI_MANIFEST, auth)[0] == 200


def wait_pushed(reg, repo, tag, auth=None):
    assert wait_for(lambda: tag_present(reg, repo, tag, auth), PUSH_TIMEOUT, 0.2), \
        f"{repo}:{tag} did not appear in the registry within {PUSH_TIMEOUT} s"


def machine(sebsfs, tmp_path, name, spec, mode=None, env=None, builder="builder=host"):
    opts = [builder, f"remote_cache={spec}"]
    if mode:
        opts.append(f"remote_cache_mode={mode}")
    return sebsfs(cache=tmp_path / f"cache-{name}", options=tuple(opts), env=env)


def package(m):
    return m.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)


def served_remotely(m, data):
    """m's package, which must be data, fetched from the registry (no build)."""
    z = package(m)
    assert read(z) == data
    assert builds(z) == 0
    assert xattr(z, "user.sebs.origin") == "remote"
    return z


def blob_data_file(reg, digest):
    hexd = digest.split(":", 1)[1]
    return (reg.base / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / hexd[:2]
            / hexd / "data")


def first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, env, auth=None):
    m1 = machine(sebsfs, tmp_path, "one", f"{reg.addr}/{repo}", env=env)
    z1 = package(m1)
    data = read(z1)
    assert builds(z1) == 1
    assert xattr(z1, "user.sebs.origin") == "local"
    key = xattr(z1, "user.sebs.input_hash")
    assert len(key) == 64
    wait_pushed(reg, repo, key, auth)
    return m1, data, key


def test_second_machine_serves_what_the_first_built(sebsfs, tmp_path, reg, repo, no_credentials):
    m1, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, no_credentials)

    # the artifact, as the OCI image spec (1.1) describes one
    status, headers, body = get(reg, f"{repo}/manifests/{key}", OCI_MANIFEST)
    assert status == 200
    m = json.loads(body)
    assert m["schemaVersion"] == 2
    assert m["mediaType"] == OCI_MANIFEST
    assert m["artifactType"] == "application/vnd.sebsfs.package.v1"
    assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert m["config"]["digest"] == EMPTY_DIGEST and m["config"]["size"] == 2
    assert len(m["layers"]) == 1
    layer = m["layers"][0]
    assert layer["mediaType"] == "application/vnd.sebsfs.package.v1+zip"
    assert layer["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer["size"] == len(data)
    assert layer["annotations"] == {"org.opencontainers.image.title": f"{DYNAMIC_HTML}.zip"}
    a = m["annotations"]
    assert a["org.sebsfs.platform"] == PLATFORM
    assert a["org.sebsfs.runtime"] == RUNTIME
    assert a["org.sebsfs.benchmark"] == DYNAMIC_HTML
    assert ";builder=host;tools=pip3 " in a["org.sebsfs.builder"]
    assert a["org.sebsfs.sha256"] == hashlib.sha256(data).hexdigest()
    assert a["org.sebsfs.version"]
    assert a["org.opencontainers.image.created"].endswith("Z")
    # the blob is the package, byte for byte
    assert get(reg, f"{repo}/blobs/{layer['digest']}")[2] == data
    assert get(reg, f"{repo}/blobs/{EMPTY_DIGEST}")[2] == b"{}"
    assert "pushing to the remote cache" in log_text(m1, PLATFORM, RUNTIME, DYNAMIC_HTML)

    # the second machine: the same bytes, no build
    m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", env=no_credentials)
    z2 = served_remotely(m2, data)
    assert xattr(z2, "user.sebs.input_hash") == key
    assert xattr(z2, "user.sebs.sha256") == hashlib.sha256(data).hexdigest()
    log = log_text(m2, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert "fetched from the remote cache" in log
    for where in (reg.addr, repo, key, layer["digest"], headers["Docker-Content-Digest"]):
        assert where in log, (where, log)
    # its own cache holds it: a remount serves it as it is, still remote
    m2.stop()
    m3 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", env=no_credentials)
    served_remotely(m3, data)


def skopeo(*args):
    """skopeo (Debian's) against the plain-HTTP loopback registry; its output."""
    r = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, f"skopeo {args}: {r.stderr}"
    return r.stdout


def test_standard_tools_list_and_fetch_the_artifacts(sebsfs, tmp_path, reg, repo,
                                                     no_credentials):
    """What a team's own tooling sees: skopeo lists the tags (the package
    key and its dependency layer), reads the manifest, and copies each
    artifact out with blobs whose bytes are the package and the layer."""
    _, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, no_credentials)
    ref = f"docker://{reg.addr}/{repo}"

    def tags():
        return json.loads(skopeo("list-tags", "--tls-verify=false", ref))["Tags"]
    assert wait_for(lambda: any(t.startswith("layer-") for t in tags()), PUSH_TIMEOUT, 0.2), \
        tags()
    layer_tag = next(t for t in tags() if t.startswith("layer-"))
    assert sorted(tags()) == sorted([key, layer_tag])

    manifest = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"{ref}:{key}"))
    assert manifest["artifactType"] == "application/vnd.sebsfs.package.v1"
    (layer,) = manifest["layers"]
    assert layer["annotations"]["org.opencontainers.image.title"] == f"{DYNAMIC_HTML}.zip"

    out = tmp_path / "skopeo-package"
    skopeo("copy", "--src-tls-verify=false", f"{ref}:{key}", f"dir:{out}")
    assert (out / hashlib.sha256(data).hexdigest()).read_bytes() == data

    out = tmp_path / "skopeo-layer"
    skopeo("copy", "--src-tls-verify=false", f"{ref}:{layer_tag}", f"dir:{out}")
    lmanifest = json.loads((out / "manifest.json").read_text())
    assert lmanifest["artifactType"] == "application/vnd.sebsfs.layer.v1"
    blob = out / lmanifest["layers"][0]["digest"].split(":", 1)[1]
    names = subprocess.run(["unzip", "-Z1", str(blob)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert "layer.json" in names and "deps.zip" in names, names
    with zipfile.ZipFile(blob) as z:
        assert json.loads(z.read("layer.json"))["key"] == layer_tag[len("layer-"):]


def test_two_machines_pushing_one_key_at_once(sebsfs, tmp_path, reg, repo, no_credentials):
    """Both miss, both build, both push the same key: the registry ends up
    with one package blob, and a third machine fetches those bytes."""
    import threading
    m1 = machine(sebsfs, tmp_path, "one", f"{reg.addr}/{repo}", env=no_credentials)
    m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", env=no_credentials)
    results = {}
    threads = [threading.Thread(target=lambda m=m: results.__setitem__(m.mnt, read(package(m))))
               for m in (m1, m2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[m1.mnt] == results[m2.mnt]
    data = results[m1.mnt]
    key = xattr(package(m1), "user.sebs.input_hash")
    assert xattr(package(m2), "user.sebs.input_hash") == key
    wait_pushed(reg, repo, key)
    # both pushes are over once both mounts are stopped (each waits for its own)
    assert m1.stop() == [] and m2.stop() == []
    for m in (m1, m2):
        assert "pushed to the remote cache" in m.stderr(), m.stderr()
        assert "push to the remote cache" not in m.stderr()
    m = json.loads(get(reg, f"{repo}/manifests/{key}", OCI_MANIFEST)[2])
    assert m["layers"][0]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    m3 = machine(sebsfs, tmp_path, "three", f"{reg.addr}/{repo}", env=no_credentials)
    z3 = package(m3)
    assert read(z3) == data
    assert builds(z3) == 0


def second_machine_builds_here(sebsfs, tmp_path, reg, repo, env, data):
    """A second machine's package, which must be built there (the remote
    one is refused) with the same bytes; returns the machine and its log."""
    m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", env=env)
    z2 = package(m2)
    assert read(z2) == data            # built here, reproducibly
    assert builds(z2) == 1
    assert xattr(z2, "user.sebs.origin") == "local"
    log = log_text(m2, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert "cannot use" in log and "building here" in log, log
    return m2, log


def test_tampered_blob_is_detected_and_built_here(sebsfs, tmp_path, reg, repo, no_credentials):
    _, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, no_credentials)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob = blob_data_file(reg, digest)
    raw = bytearray(blob.read_bytes())
    assert bytes(raw) == data
    raw[len(raw) // 2] ^= 0xFF
    blob.write_bytes(bytes(raw))

    m2, log = second_machine_builds_here(sebsfs, tmp_path, reg, repo, no_credentials, data)
    assert "is not what its manifest says" in log, log
    assert wait_for(lambda: "is not what its manifest says" in m2.stderr(), 10), m2.stderr()


def test_blob_longer_than_its_manifest_stops_the_download(sebsfs, tmp_path, reg, repo,
                                                          no_credentials):
    """A registry that sends more than the manifest's size (here 64 MiB
    appended to the stored blob) is cut off at the first extra byte: the
    package is built here and nothing of the excess stays on disk."""
    _, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, no_credentials)
    blob = blob_data_file(reg, "sha256:" + hashlib.sha256(data).hexdigest())
    with open(blob, "ab") as f:
        f.write(b"\0" * (64 << 20))

    _, log = second_machine_builds_here(sebsfs, tmp_path, reg, repo, no_credentials, data)
    assert f"longer than its {len(data)} bytes (the download stopped there)" in log, log
    cache_files = [p for p in (tmp_path / "cache-two").rglob("*") if p.is_file()]
    assert cache_files
    assert all(p.stat().st_size < (64 << 20) for p in cache_files), cache_files


def test_registry_down_builds_here(sebsfs, tmp_path, reg, repo, no_credentials):
    reg.stop()
    m = machine(sebsfs, tmp_path, "one", f"{reg.addr}/{repo}", env=no_credentials)
    z = package(m)
    data = read(z)
    assert data[:2] == b"PK"
    assert builds(z) == 1
    assert xattr(z, "user.sebs.origin") == "local"
    log = log_text(m, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert f"remote cache {reg.addr}/{repo}: cannot use" in log, log
    # the background push fails too: one line, nothing for the reader
    assert wait_for(lambda: "push to the remote cache" in m.stderr(), PUSH_TIMEOUT), m.stderr()
    assert read(z) == data


def test_garbage_registry_answer_builds_here(sebsfs, tmp_path, repo, no_credentials):
    """Something that is not a registry on the port (here an HTTP server
    answering 200 with garbage to everything)."""
    import http.server
    import threading

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"\x00not json"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_POST = do_PUT = do_GET

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        addr = f"127.0.0.1:{server.server_address[1]}"
        m = machine(sebsfs, tmp_path, "one", f"{addr}/{repo}", env=no_credentials)
        z = package(m)
        assert read(z)[:2] == b"PK"
        assert builds(z) == 1
        assert xattr(z, "user.sebs.origin") == "local"
        assert "not a sebsfs package manifest" in log_text(m, PLATFORM, RUNTIME, DYNAMIC_HTML)
    finally:
        server.shutdown()


def test_mode_read_never_pushes(sebsfs, tmp_path, reg, repo, no_credentials):
    m = machine(sebsfs, tmp_path, "one", f"{reg.addr}/{repo}", mode="read", env=no_credentials)
    z = package(m)
    read(z)
    key = xattr(z, "user.sebs.input_hash")
    assert builds(z) == 1
    assert "pushing" not in log_text(m, PLATFORM, RUNTIME, DYNAMIC_HTML)
    # after the unmount no push of this sebsfs runs: none can land later
    assert m.stop() == []
    assert not tag_present(reg, repo, key)
    assert get(reg, f"{repo}/tags/list")[0] == 404


def test_mode_write_never_fetches(sebsfs, tmp_path, reg, repo, no_credentials):
    _, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, no_credentials)
    m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", mode="write",
                 env=no_credentials)
    z2 = package(m2)
    assert read(z2) == data
    assert builds(z2) == 1
    assert xattr(z2, "user.sebs.origin") == "local"
    log = log_text(m2, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert "fetched from the remote cache" not in log and "no package tagged" not in log, log


def test_htpasswd_registry_with_docker_config_credentials(sebsfs, tmp_path, repo):
    import subprocess
    base = tmp_path / "htpasswd"
    base.mkdir()
    htpasswd = base / "htpasswd"
    r = subprocess.run(["htpasswd", "-B", "-i", "-c", str(htpasswd), USER], input=PASSWORD,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    reg = start_registry(tmp_path, "auth-registry", htpasswd=htpasswd)
    try:
        cfg = tmp_path / "docker-config"
        cfg.mkdir()
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        (cfg / "config.json").write_text(json.dumps({"auths": {reg.addr: {"auth": token}}}))
        env = {"DOCKER_CONFIG": str(cfg)}
        auth = f"{USER}:{PASSWORD}"
        assert get(reg, f"{repo}/tags/list")[0] == 401
        _, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, env, auth)
        m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", env=env)
        served_remotely(m2, data)
        # without credentials: refused, built here, and the password in no log
        empty = tmp_path / "docker-config-empty"
        empty.mkdir()
        m3 = machine(sebsfs, tmp_path, "three", f"{reg.addr}/{repo}", mode="read",
                     env={"DOCKER_CONFIG": str(empty)})
        z3 = package(m3)
        assert read(z3) == data
        assert builds(z3) == 1
        log3 = log_text(m3, PLATFORM, RUNTIME, DYNAMIC_HTML)
        assert "cannot use" in log3 and "user name and password" in log3, log3
        for m in (m2, m3):
            assert PASSWORD not in m.stderr()
            assert token not in m.stderr()
    finally:
        reg.stop()


def test_bad_remote_cache_option_is_refused(tmp_path, suite):
    from sebsfs_testlib import one_line_error, run_sebsfs
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'c'},remote_cache=nohost",
                   str(suite), "@MNT@")
    one_line_error(r, "remote_cache=nohost", "REGISTRY/REPOSITORY")
    r = run_sebsfs(tmp_path, "-f", "-o",
                   f"cache={tmp_path / 'c'},remote_cache=127.0.0.1:1/x,remote_cache_mode=both",
                   str(suite), "@MNT@")
    one_line_error(r, "remote_cache_mode=both", "read, write or readwrite")


def test_token_registry(sebsfs, tmp_path, repo):
    """distribution's `auth: token`: the first machine gets its bearer token
    with a user and password (GET with Basic, scope pull,push), the second
    with an identity token (OAuth2 refresh_token grant, scope pull); the
    token server of registry_token_server (shared with test_registry_token) is the one asked."""
    from registry_token_server import (ISSUER, PASSWORD as T_PASSWORD, REFRESH_TOKEN, SERVICE,
                                     USER as T_USER, TokenServer)
    with TokenServer(tmp_path) as ts, PrivateRegistry(
            tmp_path / "token-registry", free_port(),
            token={"realm": ts.realm, "service": SERVICE, "issuer": ISSUER,
                   "rootcertbundle": str(ts.cert)}) as reg:
        def config(name, entry):
            d = tmp_path / f"docker-config-{name}"
            d.mkdir()
            (d / "config.json").write_text(json.dumps({"auths": {reg.addr: entry}}))
            return {"DOCKER_CONFIG": str(d)}

        userpass = config("userpass", {"username": T_USER, "password": T_PASSWORD})
        m1 = machine(sebsfs, tmp_path, "one", f"{reg.addr}/{repo}", env=userpass)
        z1 = package(m1)
        data = read(z1)
        key = xattr(z1, "user.sebs.input_hash")

        def pushed():
            status, _, _ = get_bearer(reg, f"{repo}/manifests/{key}", ts.token_for(repo))
            return status == 200
        assert wait_for(pushed, PUSH_TIMEOUT, 0.2), m1.stderr()
        push_asks = [r for r in ts.seen() if f"repository:{repo}:pull,push" in r["scopes"]]
        assert push_asks and all(r["method"] == "GET" and r["user"] == T_USER and r["granted"]
                                 and r["service"] == SERVICE for r in push_asks), ts.seen()

        identity = config("identity", {"identitytoken": REFRESH_TOKEN})
        m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", mode="read", env=identity)
        served_remotely(m2, data)
        pulls = [r for r in ts.seen() if r["method"] == "POST"]
        assert pulls and pulls[-1]["grant"] == "refresh_token" and pulls[-1]["granted"]
        assert pulls[-1]["scopes"] == [f"repository:{repo}:pull"]
        assert pulls[-1]["client_id"] == "sebsfs"
        for m in (m1, m2):
            assert T_PASSWORD not in m.stderr() and REFRESH_TOKEN not in m.stderr()


def get_bearer(reg, path, token):
    req = urllib.request.Request(f"http://{reg.addr}/v2/{path}",
                                 headers={"Accept": OCI_MANIFEST,
                                          "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


class RefusingProxy:
    """An HTTP proxy in front of a registry that refuses OCI 1.1 artifact
    manifests (those with artifactType) as registries that predate it do,
    with 400 MANIFEST_INVALID; everything else is passed through."""

    def __init__(self, upstream):
        import http.server
        import threading
        proxy = self
        self.refused = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if (self.command == "PUT" and "/manifests/" in self.path and body
                        and b'"artifactType"' in body):
                    proxy.refused += 1
                    doc = json.dumps({"errors": [{"code": "MANIFEST_INVALID",
                                                  "message": "manifest invalid"}]}).encode()
                    self.send_response(400)
                    self.send_header("Content-Length", str(len(doc)))
                    self.end_headers()
                    self.wfile.write(doc)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                req = urllib.request.Request(f"http://{upstream}{self.path}", data=body,
                                             headers=headers, method=self.command)
                try:
                    r = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as e:
                    r = e
                data = r.read()
                self.send_response(r.status if hasattr(r, "status") else r.code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = relay

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_registry_refusing_artifacts_gets_a_config_media_type(sebsfs, tmp_path, reg, repo,
                                                               no_credentials):
    proxy = RefusingProxy(reg.addr)
    try:
        m1 = machine(sebsfs, tmp_path, "one", f"{proxy.addr}/{repo}", env=no_credentials)
        z1 = package(m1)
        data = read(z1)
        key = xattr(z1, "user.sebs.input_hash")
        wait_pushed(reg, repo, key)
        assert proxy.refused >= 1
        m = json.loads(get(reg, f"{repo}/manifests/{key}", OCI_MANIFEST)[2])
        assert "artifactType" not in m
        assert m["config"]["mediaType"] == "application/vnd.sebsfs.package.config.v1+json"
        config = get(reg, f"{repo}/blobs/{m['config']['digest']}")[2]
        assert "sha256:" + hashlib.sha256(config).hexdigest() == m["config"]["digest"]
        assert json.loads(config)["org.sebsfs.sha256"] == hashlib.sha256(data).hexdigest()
        assert m["layers"][0]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert "was refused" in m1.stderr()

        m2 = machine(sebsfs, tmp_path, "two", f"{proxy.addr}/{repo}", env=no_credentials)
        served_remotely(m2, data)
    finally:
        proxy.close()


@pytest.fixture
def silent_registry():
    """The address of a "registry" that accepts connections (the kernel's
    backlog does) and never answers."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_silent_registry_bounds_the_lookup(sebsfs, tmp_path, repo, no_credentials,
                                           silent_registry):
    """The look-up gives up after its bound, the package is built here, and
    the unmount is not held up by the push that hangs too."""
    import time
    m = machine(sebsfs, tmp_path, "one", f"{silent_registry}/{repo}", env=no_credentials)
    z = package(m)
    start = time.monotonic()
    assert read(z)[:2] == b"PK"
    assert builds(z) == 1
    assert xattr(z, "user.sebs.origin") == "local"
    log = log_text(m, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert "cannot use" in log and "building here" in log, log
    assert "imed out" in log or "no time left" in log, log
    # bounded: the look-up's 10 s and a local build, far from a hang
    assert time.monotonic() - start < 120
    assert m.stop() == []


def test_unmount_during_a_lookup_does_not_wait_for_it(sebsfs, tmp_path, repo, no_credentials,
                                                      silent_registry):
    """The look-up is part of the build: stopping sebsfs cancels it like
    any build step instead of waiting out its 10 s bound."""
    import threading
    import time
    m = machine(sebsfs, tmp_path, "one", f"{silent_registry}/{repo}", env=no_credentials)
    z = package(m)

    def reader():
        try:
            with open(z, "rb") as f:
                f.read()
        except OSError:
            pass
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert wait_for(lambda: xattr(z, "user.sebs.state") == "building", 10)
    time.sleep(0.5)   # inside the look-up, which the silent registry holds
    start = time.monotonic()
    assert m.stop() == []
    assert time.monotonic() - start < 5, "the stop waited for the look-up"
    t.join(timeout=10)


# ---- the host builder's toolchain is part of the key ------------------------

PIP_SHIM = """#!/bin/sh
# pip3 of another version: says so, and installs with the real one
if [ "$1" = "--version" ]; then
    echo "pip 99.1.0 from /opt/elsewhere/pip (python 3.11)"
    exit 0
fi
exec {real} "$@"
"""


def shim_env(tmp_path):
    """A PATH whose pip3 reports another version (and installs with the
    real pip3): a machine whose host toolchain differs from this one's."""
    import shutil
    import stat
    real = shutil.which("pip3")
    assert real, "no pip3 on PATH"
    bindir = tmp_path / "other-pip"
    bindir.mkdir()
    shim = bindir / "pip3"
    shim.write_text(PIP_SHIM.format(real=real))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_host_toolchain_is_in_the_key(sebsfs, tmp_path):
    """builder=host: the key names the host's pip3 and python3 versions.
    The same toolchain twice gives the same key; a pip3 of another version
    gives another key; no remote cache is involved."""
    def key(name, env=None):
        m = sebsfs(cache=tmp_path / f"cache-{name}", env=env)
        z = package(m)
        data = read(z)
        assert builds(z) == 1
        k = xattr(z, "user.sebs.input_hash")
        # a remount with the same toolchain serves it as it is
        m.stop()
        m2 = sebsfs(cache=tmp_path / f"cache-{name}", env=env)
        z2 = package(m2)
        assert read(z2) == data
        assert builds(z2) == 0
        assert xattr(z2, "user.sebs.input_hash") == k
        assert xattr(z2, "user.sebs.state") == "fresh"
        return k, data

    key_a, data_a = key("a")
    key_b, _ = key("b")
    assert key_a == key_b                       # equal toolchains, equal keys
    key_shim, data_shim = key("shim", shim_env(tmp_path))
    assert key_shim != key_a                    # another pip3, another key
    assert data_shim == data_a                  # (the shim installs with the real pip3)


def test_other_toolchain_does_not_fetch_from_the_remote_cache(sebsfs, tmp_path, reg, repo,
                                                               no_credentials):
    """Machine A builds with its pip3 and pushes; machine B, whose pip3 has
    another version, computes another key, finds no package under it and
    builds its own; machine C, with A's toolchain, fetches A's."""
    m1, data, key = first_machine_builds_and_pushes(sebsfs, tmp_path, reg, repo, no_credentials)
    manifest = json.loads(get(reg, f"{repo}/manifests/{key}", OCI_MANIFEST)[2])
    builder = manifest["annotations"]["org.sebsfs.builder"]
    assert ";builder=host;tools=pip3 pip " in builder and "; python3 Python 3." in builder, builder
    assert " from /" not in builder and ";configuration=" in builder, builder

    other = dict(no_credentials, **shim_env(tmp_path))
    m2 = machine(sebsfs, tmp_path, "two", f"{reg.addr}/{repo}", env=other)
    z2 = package(m2)
    assert read(z2) == data
    assert builds(z2) == 1
    assert xattr(z2, "user.sebs.origin") == "local"
    key2 = xattr(z2, "user.sebs.input_hash")
    assert key2 != key
    log = log_text(m2, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert f"no package tagged {key2}" in log and "fetched from the remote cache" not in log, log
    # its push is under its own key, next to A's
    wait_pushed(reg, repo, key2)
    m = json.loads(get(reg, f"{repo}/manifests/{key2}", OCI_MANIFEST)[2])
    assert "tools=pip3 pip 99.1.0 (python 3.11)" in m["annotations"]["org.sebsfs.builder"]

    m3 = machine(sebsfs, tmp_path, "three", f"{reg.addr}/{repo}", env=no_credentials)
    z3 = served_remotely(m3, data)
    assert xattr(z3, "user.sebs.input_hash") == key


# ---- a registry that speaks TLS -------------------------------------------------


def openssl(*args, cwd):
    import subprocess
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def make_ca(d, name):
    """A CA of the test's own: d/<name>.crt and d/<name>.key."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return d / f"{name}.crt"


def make_cert(d, ca, name, subject, extensions):
    """d/<name>.crt (signed by the CA ca) and d/<name>.key."""
    (d / f"{name}.ext").write_text(extensions)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)
    return d / f"{name}.crt", d / f"{name}.key"


class TlsRegistry(PrivateRegistry):
    """A docker-registry on 127.0.0.1 that speaks only TLS, with a server
    certificate for the IP 127.0.0.1 from the test's CA; with client_ca, it
    also wants a client certificate that CA signed."""

    def __init__(self, base, port, cert, key, ca, client_ca=None):
        super().__init__(base, port)
        tls = f"  tls:\n    certificate: {cert}\n    key: {key}\n"
        if client_ca:
            tls += f"    clientcas:\n      - {client_ca}\n"
        text = self.config.read_text()
        http = f"http:\n  addr: {self.addr}\n"
        assert http in text
        self.config.write_text(text.replace(http, http + tls))
        import ssl
        self.context = ssl.create_default_context(cafile=str(ca))
        if client_ca:
            self.context.load_cert_chain(str(base.parent / "pki" / "client.crt"),
                                         str(base.parent / "pki" / "client.key"))

    def get(self, path, accept=OCI_MANIFEST):
        req = urllib.request.Request(f"https://{self.addr}/v2/{path}",
                                     headers={"Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.context) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def answers(self):
        try:
            return self.get("")[0] == 200
        except OSError:
            return False


@pytest.fixture
def pki(tmp_path):
    """The test's CA, a server certificate for 127.0.0.1 (IP SAN) and a
    client certificate, all from it; and an unrelated CA."""
    d = tmp_path / "pki"
    d.mkdir()
    ca = make_ca(d, "ca")
    server = make_cert(d, "ca", "server", "/CN=127.0.0.1",
                       "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    client = make_cert(d, "ca", "client", "/CN=sebsfs-cache-client",
                       "extendedKeyUsage=clientAuth\n")
    other_ca = make_ca(d, "other-ca")
    return {"ca": ca, "server": server, "client": client, "other_ca": other_ca}


def certs_root(tmp_path, name, addr, files):
    """A certificate folder root as /etc/docker/certs.d is one:
    <root>/<host:port>/ holding files ({name in the folder: source})."""
    root = tmp_path / name
    (root / addr).mkdir(parents=True)
    for target, source in files.items():
        (root / addr / target).write_bytes(Path(source).read_bytes())
    return root


def tls_machine(sebsfs, tmp_path, name, reg, repo, root, env, mode=None):
    opts = ["builder=host", f"remote_cache={reg.addr}/{repo}", f"remote_cache_certs={root}"]
    if mode:
        opts.append(f"remote_cache_mode={mode}")
    return sebsfs(cache=tmp_path / f"cache-{name}", options=tuple(opts), env=env)


def test_https_registry_with_the_ca_in_its_certs_folder(sebsfs, tmp_path, repo, pki,
                                                        no_credentials):
    """A loopback registry with a certificate folder is spoken to over TLS
    (as Docker does), trusting the folder's ca.crt: machine A pushes, machine
    B fetches the same bytes.  With another CA in the folder the remote cache
    fails with one line naming the certificate problem, and the package is
    built here."""
    cert, key = pki["server"]
    with TlsRegistry(tmp_path / "tls-registry", free_port(), cert, key, pki["ca"]) as reg:
        good = certs_root(tmp_path, "certs.d", reg.addr, {"ca.crt": pki["ca"]})
        m1 = tls_machine(sebsfs, tmp_path, "one", reg, repo, good, no_credentials)
        z1 = package(m1)
        data = read(z1)
        assert builds(z1) == 1
        key1 = xattr(z1, "user.sebs.input_hash")
        assert wait_for(lambda: reg.get(f"{repo}/manifests/{key1}")[0] == 200, PUSH_TIMEOUT,
                        0.2), m1.stderr()
        assert "pushed to the remote cache" in m1.stderr() or wait_for(
            lambda: "pushed to the remote cache" in m1.stderr(), 10)
        m = json.loads(reg.get(f"{repo}/manifests/{key1}")[1])
        assert m["layers"][0]["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()

        m2 = tls_machine(sebsfs, tmp_path, "two", reg, repo, good, no_credentials, mode="read")
        served_remotely(m2, data)
        assert f"fetched from the remote cache: registry {reg.addr}" in log_text(
            m2, PLATFORM, RUNTIME, DYNAMIC_HTML)

        # another CA: the registry's certificate is not trusted
        wrong = certs_root(tmp_path, "certs-wrong.d", reg.addr, {"ca.crt": pki["other_ca"]})
        m3 = tls_machine(sebsfs, tmp_path, "three", reg, repo, wrong, no_credentials)
        z3 = package(m3)
        assert read(z3) == data
        assert builds(z3) == 1
        assert xattr(z3, "user.sebs.origin") == "local"
        log = log_text(m3, PLATFORM, RUNTIME, DYNAMIC_HTML)
        assert "cannot use" in log and "building here" in log, log
        assert f"GET https://{reg.addr}/v2/{repo}/manifests/{key1}" in log, log
        lines = [line for line in m3.stderr().splitlines()
                 if "building here" in line and "remote cache" in line]
        assert len(lines) == 1, m3.stderr()
        assert "certificate" in lines[0] and str(wrong / reg.addr) in lines[0], lines[0]
        # the push fails the same way: one line, nothing for the reader
        assert wait_for(lambda: "push to the remote cache" in m3.stderr(), PUSH_TIMEOUT)
        assert read(z3) == data


def test_https_registry_wanting_a_client_certificate(sebsfs, tmp_path, repo, pki,
                                                     no_credentials):
    """client.cert and client.key in the registry's folder (Docker's names)
    are presented; without them the registry refuses the connection and the
    package is built here."""
    cert, key = pki["server"]
    client_crt, client_key = pki["client"]
    with TlsRegistry(tmp_path / "mtls-registry", free_port(), cert, key, pki["ca"],
                     client_ca=pki["ca"]) as reg:
        with_client = certs_root(tmp_path, "certs.d", reg.addr,
                                 {"ca.crt": pki["ca"], "client.cert": client_crt,
                                  "client.key": client_key})
        _, data, key1 = (lambda m: (m, read(package(m)), xattr(package(m), "user.sebs.input_hash")))(
            tls_machine(sebsfs, tmp_path, "one", reg, repo, with_client, no_credentials))
        assert wait_for(lambda: reg.get(f"{repo}/manifests/{key1}")[0] == 200, PUSH_TIMEOUT, 0.2)
        m2 = tls_machine(sebsfs, tmp_path, "two", reg, repo, with_client, no_credentials,
                         mode="read")
        assert read(package(m2)) == data
        assert builds(package(m2)) == 0
        assert xattr(package(m2), "user.sebs.origin") == "remote"

        ca_only = certs_root(tmp_path, "certs-ca-only.d", reg.addr, {"ca.crt": pki["ca"]})
        m3 = tls_machine(sebsfs, tmp_path, "three", reg, repo, ca_only, no_credentials,
                         mode="read")
        assert read(package(m3)) == data
        assert builds(package(m3)) == 1
        assert xattr(package(m3), "user.sebs.origin") == "local"
        assert "cannot use" in log_text(m3, PLATFORM, RUNTIME, DYNAMIC_HTML)


def test_half_a_client_certificate_is_refused_at_mount(tmp_path, suite):
    from sebsfs_testlib import one_line_error, run_sebsfs
    root = tmp_path / "certs.d"
    (root / "127.0.0.1:1").mkdir(parents=True)
    (root / "127.0.0.1:1" / "client.cert").write_text("not used\n")
    r = run_sebsfs(tmp_path, "-f", "-o",
                   f"cache={tmp_path / 'c'},remote_cache=127.0.0.1:1/x,remote_cache_certs={root}",
                   str(suite), "@MNT@")
    one_line_error(r, "client.cert", "client.key")
