"""Dependency layers through the shared cache (-o remote_cache, issue 12).

Mounts with cache folders of their own stand for machines sharing a
docker-registry of the test's own.  Machine A builds 110.dynamic-html and
pushes the package and its dependency layer; machine B reads another
benchmark (a copy with other code: another package key, the same
dependency key), finds no package but the layer, and must not install
(a pip3 on its PATH records every run); its package must equal the one a
third cache builds from scratch.  A layer blob damaged in the registry's
storage, a layer whose content is not the wanted one, a registry that is
down, the read and write modes, and two builds fetching one layer at once
are checked through the same mounts.
"""

import hashlib
import io
import json
import os
import shutil
import threading
import urllib.request
import zipfile

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, append, builds, log_text, read, wait_for,
                            xattr)
from test_remote_cache import (OCI_MANIFEST, RefusingProxy, blob_data_file, get,  # noqa: F401
                               no_credentials, reg, repo, tag_present, wait_pushed)

PLATFORM, RUNTIME = "aws", "python-3.11"
COPY = "120.dynamic-copy"
LAYER_ARTIFACT = "application/vnd.sebsfs.layer.v1"
LAYER_MEDIA = "application/vnd.sebsfs.layer.v1+zip"
PUSH_TIMEOUT = 60


def copy_benchmark(suite):
    """120.dynamic-copy: 110.dynamic-html's dependencies, other code."""
    other = suite / "benchmarks/100.webapps" / COPY
    shutil.copytree(suite / BENCH_DIRS[DYNAMIC_HTML], other)
    append(other / "python" / "function.py", "\n# another benchmark, the same dependencies\n")


def pip_recorder(tmp_path, name):
    """A PATH folder whose pip3 records its arguments, then runs the real
    one (so `pip3 --version`, part of the layer key, answers the same)."""
    bindir = tmp_path / f"bin-{name}"
    bindir.mkdir()
    calls = tmp_path / f"pip-calls-{name}"
    real = shutil.which("pip3")
    shim = bindir / "pip3"
    shim.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    shim.chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}, calls


def installs(calls):
    """The pip3 runs that installed something."""
    if not calls.exists():
        return []
    return [line for line in calls.read_text().splitlines() if line.startswith("install")]


def machine(sebsfs, tmp_path, name, spec, mode=None, env=None, options=()):
    opts = ["builder=host", *options]
    if spec:
        opts.append(f"remote_cache={spec}")
    if mode:
        opts.append(f"remote_cache_mode={mode}")
    return sebsfs(cache=tmp_path / f"cache-{name}", options=tuple(opts), env=env)


def deps(path):
    return xattr(path, "user.sebs.deps_hash"), xattr(path, "user.sebs.deps_reused")


def build_and_push(sebsfs, tmp_path, reg, repo, env):
    """Machine A builds 110.dynamic-html: its package and layer pushed."""
    a = machine(sebsfs, tmp_path, "a", f"{reg.addr}/{repo}", env=env)
    z = a.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    read(z)
    key, lkey = xattr(z, "user.sebs.input_hash"), deps(z)[0]
    assert len(lkey) == 64 and deps(z)[1] == "no"
    log = log_text(a, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert f"no dependency layer tagged layer-{lkey}; installing here" in log, log
    assert f"pushing to the remote cache in the background (tag layer-{lkey})" in log, log
    wait_pushed(reg, repo, key)
    wait_pushed(reg, repo, f"layer-{lkey}")
    return a, key, lkey


def second_machine(sebsfs, tmp_path, reg, repo, env):
    """Machine B, its pip3 recorded; it reads A's package first, a remote
    hit, which needs no layer: none is asked for."""
    path_env, calls = pip_recorder(tmp_path, "b")
    b = machine(sebsfs, tmp_path, "b", f"{reg.addr}/{repo}", env={**env, **path_env})
    z1 = b.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    read(z1)
    assert xattr(z1, "user.sebs.origin") == "remote"
    assert "dependency layer" not in log_text(b, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert os.listdir(b.cache / "layers") == []
    return b, calls


def reader_fetches_the_layer(sebsfs, tmp_path, spec, lkey, env):
    """Machine B, remote_cache_mode=read, reads 120.dynamic-copy: the layer
    comes from the registry, pip3 installs nothing."""
    path_env, calls = pip_recorder(tmp_path, "b")
    b = machine(sebsfs, tmp_path, "b", spec, mode="read", env={**env, **path_env})
    read(b.zip(PLATFORM, RUNTIME, COPY))
    assert f"dependency layer {lkey} fetched from" in log_text(b, PLATFORM, RUNTIME, COPY)
    assert installs(calls) == []


def layer_manifest(reg, repo, lkey):
    status, _, body = get(reg, f"{repo}/manifests/layer-{lkey}", OCI_MANIFEST)
    assert status == 200
    return json.loads(body)


def test_a_layer_from_another_machine_serves_another_benchmark(sebsfs, suite, tmp_path, reg,
                                                                repo, no_credentials):
    copy_benchmark(suite)
    a, key, lkey = build_and_push(sebsfs, tmp_path, reg, repo, no_credentials)

    # both kinds of artifact, listed by the registry API
    status, _, body = get(reg, f"{repo}/tags/list")
    assert status == 200
    assert sorted(json.loads(body)["tags"]) == sorted([key, f"layer-{lkey}"])
    m = layer_manifest(reg, repo, lkey)
    assert m["mediaType"] == OCI_MANIFEST and m["schemaVersion"] == 2
    assert m["artifactType"] == LAYER_ARTIFACT
    assert m["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert len(m["layers"]) == 1 and m["layers"][0]["mediaType"] == LAYER_MEDIA
    ann = m["annotations"]
    assert (ann["org.sebsfs.language"], ann["org.sebsfs.language_version"],
            ann["org.sebsfs.arch"]) == ("python", "3.11", "x64")
    assert ann["org.sebsfs.installer"].startswith("host pip3 ")
    assert ann["org.sebsfs.version"] and ann["org.opencontainers.image.created"].endswith("Z")
    package = json.loads(get(reg, f"{repo}/manifests/{key}", OCI_MANIFEST)[2])
    assert package["artifactType"] == "application/vnd.sebsfs.package.v1"
    # the blob: the layer folder, a zip of stored entries, its digest annotated
    blob = get(reg, f"{repo}/blobs/{m['layers'][0]['digest']}")[2]
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == m["layers"][0]["digest"]
    assert ann["org.sebsfs.sha256"] == hashlib.sha256(blob).hexdigest()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        assert {"deps.zip", "layer.json"} <= set(zf.namelist())
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        assert json.loads(zf.read("layer.json"))["key"] == lkey
        assert zf.read("deps.zip") == (a.cache / "layers" / lkey / "deps.zip").read_bytes()

    # machine B: another benchmark, no package in the registry, the layer there
    b, calls = second_machine(sebsfs, tmp_path, reg, repo, no_credentials)
    z2 = b.zip(PLATFORM, RUNTIME, COPY)
    data = read(z2)
    assert xattr(z2, "user.sebs.input_hash") != key
    assert xattr(z2, "user.sebs.origin") == "local" and builds(z2) == 1
    assert deps(z2) == (lkey, "no")
    log = log_text(b, PLATFORM, RUNTIME, COPY)
    assert f"no package tagged {xattr(z2, 'user.sebs.input_hash')}" in log, log
    assert f"dependency layer {lkey} fetched from {reg.addr}/{repo}" in log, log
    assert f"tag layer-{lkey}" in log
    assert "pip3 install" not in log and installs(calls) == [], log
    assert "pushing to the remote cache in the background (tag layer-" not in log
    origin = json.loads((b.cache / "layers" / lkey / "layer.json").read_text())["fetched_from"]
    assert origin["registry"] == reg.addr and origin["repository"] == repo
    assert origin["tag"] == f"layer-{lkey}"
    assert "sha256:" + origin["sha256"] == m["layers"][0]["digest"]

    # a third cache, no remote cache: the same package from scratch
    env_c, calls_c = pip_recorder(tmp_path, "c")
    c = machine(sebsfs, tmp_path, "c", None, env=env_c)
    zc = c.zip(PLATFORM, RUNTIME, COPY)
    assert read(zc) == data, "a spliced fetched layer must give the bytes of a cold build"
    assert len(installs(calls_c)) == 1   # the recorder does see installs


def test_a_tampered_layer_blob_is_detected_and_installed_here(sebsfs, suite, tmp_path, reg,
                                                             repo, no_credentials):
    copy_benchmark(suite)
    _, _, lkey = build_and_push(sebsfs, tmp_path, reg, repo, no_credentials)
    blob = blob_data_file(reg, layer_manifest(reg, repo, lkey)["layers"][0]["digest"])
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    blob.write_bytes(bytes(raw))

    b, calls = second_machine(sebsfs, tmp_path, reg, repo, no_credentials)
    z2 = b.zip(PLATFORM, RUNTIME, COPY)
    data = read(z2)
    assert deps(z2) == (lkey, "no")
    log = log_text(b, PLATFORM, RUNTIME, COPY)
    assert f"cannot use layer-{lkey}" in log and "is not what its manifest says" in log, log
    assert "installing here" in log
    assert len(installs(calls)) == 1
    assert "layer.json" in os.listdir(b.cache / "layers" / lkey)
    assert "fetched_from" not in (b.cache / "layers" / lkey / "layer.json").read_text()
    assert wait_for(lambda: "is not what its manifest says" in b.stderr(), 10), b.stderr()
    c = machine(sebsfs, tmp_path, "c", None)
    assert read(c.zip(PLATFORM, RUNTIME, COPY)) == data


def put_artifact(reg, repo, tag, blob):
    """Pushes blob as a layer artifact under tag with correct digests (what
    a writer of the repository can do)."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    empty = b"{}"
    for data in (blob, empty):
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        req = urllib.request.Request(f"http://{reg.addr}/v2/{repo}/blobs/uploads/",
                                     method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as r:
            loc = r.headers["Location"]
        if loc.startswith("/"):
            loc = f"http://{reg.addr}{loc}"
        sep = "&" if "?" in loc else "?"
        req = urllib.request.Request(f"{loc}{sep}digest={d}", method="PUT", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req, timeout=10).close()
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": LAYER_ARTIFACT,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": "sha256:" + hashlib.sha256(empty).hexdigest(), "size": 2},
        "layers": [{"mediaType": LAYER_MEDIA, "digest": digest, "size": len(blob)}],
        "annotations": {"org.sebsfs.sha256": digest.split(":", 1)[1]},
    }
    req = urllib.request.Request(f"http://{reg.addr}/v2/{repo}/manifests/{tag}", method="PUT",
                                 data=json.dumps(manifest).encode(),
                                 headers={"Content-Type": OCI_MANIFEST})
    urllib.request.urlopen(req, timeout=10).close()


def zip_bytes(entries):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


def test_a_layer_that_is_not_the_wanted_one_is_refused(sebsfs, suite, tmp_path, reg, repo,
                                                       no_credentials):
    """Blobs whose digests are right but whose content is not a good layer of
    the key: a name climbing out of the folder, another key's layer.json."""
    copy_benchmark(suite)
    a, _, lkey = build_and_push(sebsfs, tmp_path, reg, repo, no_credentials)
    good = get(reg, f"{repo}/blobs/{layer_manifest(reg, repo, lkey)['layers'][0]['digest']}")[2]
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        members = [(n, zf.read(n)) for n in zf.namelist() if not n.endswith("/")]
    doc = json.loads(dict(members)["layer.json"])
    escape = zip_bytes(members + [("../../escaped.txt", b"out")])
    other_key = zip_bytes([(n, d) if n != "layer.json" else
                           (n, json.dumps({**doc, "key": "0" * 64}).encode())
                           for n, d in members])
    stray = zip_bytes(members + [("stray.txt", b"not a layer member")])
    cases = [(escape, "'..' leads out of the tree"),
             (other_key, "names key " + "0" * 64),
             (stray, "holds stray.txt")]
    for i, (blob, why) in enumerate(cases):
        put_artifact(reg, repo, f"layer-{lkey}", blob)
        env, calls = pip_recorder(tmp_path, f"b{i}")
        b = machine(sebsfs, tmp_path, f"b{i}", f"{reg.addr}/{repo}", mode="read",
                    env={**no_credentials, **env})
        z = b.zip(PLATFORM, RUNTIME, COPY)
        read(z)
        log = log_text(b, PLATFORM, RUNTIME, COPY)
        assert f"cannot use layer-{lkey}" in log and why in log, (why, log)
        assert len(installs(calls)) == 1, why
        assert deps(z) == (lkey, "no")
        assert not list(b.cache.rglob("escaped.txt")) and not (tmp_path / "escaped.txt").exists()
        assert os.listdir(b.cache / "tmp") == []
        b.stop()


def test_registry_refusing_artifacts_gets_a_layer_config_media_type(sebsfs, suite, tmp_path,
                                                                    reg, repo, no_credentials):
    copy_benchmark(suite)
    proxy = RefusingProxy(reg.addr)
    try:
        a = machine(sebsfs, tmp_path, "a", f"{proxy.addr}/{repo}", env=no_credentials)
        read(a.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))
        lkey = deps(a.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))[0]
        wait_pushed(reg, repo, f"layer-{lkey}")
        m = layer_manifest(reg, repo, lkey)
        assert "artifactType" not in m
        assert m["config"]["mediaType"] == "application/vnd.sebsfs.layer.config.v1+json"
        config = json.loads(get(reg, f"{repo}/blobs/{m['config']['digest']}")[2])
        assert config["org.sebsfs.language"] == "python"
        assert "sha256:" + config["org.sebsfs.sha256"] == m["layers"][0]["digest"]

        reader_fetches_the_layer(sebsfs, tmp_path, f"{proxy.addr}/{repo}", lkey, no_credentials)
    finally:
        proxy.close()


def test_the_layer_key_does_not_depend_on_home(sebsfs, suite, tmp_path, reg, repo,
                                              no_credentials):
    """Machines of a team differ in $HOME: where pip's user configuration
    would be is not in the key (its content, when there is one, is)."""
    copy_benchmark(suite)
    homes = {name: tmp_path / f"home-{name}" for name in ("a", "b", "c")}
    for h in homes.values():
        h.mkdir()
    a = machine(sebsfs, tmp_path, "a", f"{reg.addr}/{repo}",
                env={**no_credentials, "HOME": str(homes["a"])})
    read(a.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))
    lkey = deps(a.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))[0]
    wait_pushed(reg, repo, f"layer-{lkey}")
    reader_fetches_the_layer(sebsfs, tmp_path, f"{reg.addr}/{repo}", lkey,
                             {**no_credentials, "HOME": str(homes["b"])})
    conf = homes["c"] / ".config" / "pip" / "pip.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# a team's pip settings\n")
    c = machine(sebsfs, tmp_path, "c", f"{reg.addr}/{repo}", mode="read",
                env={**no_credentials, "HOME": str(homes["c"])})
    z = c.zip(PLATFORM, RUNTIME, COPY)
    read(z)
    assert deps(z) == (deps(z)[0], "no") and deps(z)[0] != lkey


def test_registry_down_installs_here(sebsfs, tmp_path, reg, repo, no_credentials):
    reg.stop()
    env, calls = pip_recorder(tmp_path, "a")
    a = machine(sebsfs, tmp_path, "a", f"{reg.addr}/{repo}", env={**no_credentials, **env})
    z = a.zip(PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert read(z)[:2] == b"PK"
    lkey = deps(z)[0]
    log = log_text(a, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert f"remote cache {reg.addr}/{repo}: cannot use layer-{lkey}" in log, log
    assert "installing here" in log and len(installs(calls)) == 1
    # both background pushes fail: lines in sebsfs's log, nothing for the reader
    assert wait_for(lambda: f"dependency layer {lkey[:12]}: push to the remote cache" in
                    a.stderr(), PUSH_TIMEOUT), a.stderr()


def test_mode_read_fetches_layers_and_never_pushes_them(sebsfs, suite, tmp_path, reg, repo,
                                                        no_credentials):
    copy_benchmark(suite)
    # a reader alone pushes nothing, neither package nor layer
    r = machine(sebsfs, tmp_path, "r", f"{reg.addr}/{repo}", mode="read", env=no_credentials)
    read(r.zip(PLATFORM, RUNTIME, DYNAMIC_HTML))
    assert "pushing" not in log_text(r, PLATFORM, RUNTIME, DYNAMIC_HTML)
    assert r.stop() == []
    assert get(reg, f"{repo}/tags/list")[0] == 404
    # with a writer's layer there, a reader fetches it
    _, _, lkey = build_and_push(sebsfs, tmp_path, reg, repo, no_credentials)
    reader_fetches_the_layer(sebsfs, tmp_path, f"{reg.addr}/{repo}", lkey, no_credentials)


def test_mode_write_never_fetches_layers(sebsfs, suite, tmp_path, reg, repo, no_credentials):
    copy_benchmark(suite)
    _, _, lkey = build_and_push(sebsfs, tmp_path, reg, repo, no_credentials)
    env, calls = pip_recorder(tmp_path, "b")
    b = machine(sebsfs, tmp_path, "b", f"{reg.addr}/{repo}", mode="write",
                env={**no_credentials, **env})
    z = b.zip(PLATFORM, RUNTIME, COPY)
    read(z)
    log = log_text(b, PLATFORM, RUNTIME, COPY)
    assert "fetched from" not in log and "no dependency layer tagged" not in log, log
    assert len(installs(calls)) == 1
    # installed here, so pushed (the same layer again: a no-op for the registry)
    assert f"pushing to the remote cache in the background (tag layer-{lkey})" in log
    key = xattr(z, "user.sebs.input_hash")
    assert b.stop() == []
    assert "push to the remote cache" not in b.stderr(), b.stderr()
    assert tag_present(reg, repo, key)


def test_two_builds_needing_one_remote_layer_fetch_it_once(sebsfs, suite, tmp_path, reg, repo,
                                                          no_credentials):
    copy_benchmark(suite)
    third = suite / "benchmarks/100.webapps/130.dynamic-third"
    shutil.copytree(suite / BENCH_DIRS[DYNAMIC_HTML], third)
    append(third / "python" / "function.py", "\n# a third benchmark\n")
    _, _, lkey = build_and_push(sebsfs, tmp_path, reg, repo, no_credentials)
    env, calls = pip_recorder(tmp_path, "b")
    b = machine(sebsfs, tmp_path, "b", f"{reg.addr}/{repo}", env={**no_credentials, **env},
                options=("jobs=2",))
    benches = (COPY, "130.dynamic-third")
    threads = [threading.Thread(target=lambda n=n: read(b.zip(PLATFORM, RUNTIME, n)))
               for n in benches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logs = [log_text(b, PLATFORM, RUNTIME, n) for n in benches]
    assert sum(f"dependency layer {lkey} fetched from" in log for log in logs) == 1, logs
    assert installs(calls) == []
    assert all(deps(b.zip(PLATFORM, RUNTIME, n))[0] == lkey for n in benches)
    assert os.listdir(b.cache / "layers") == [lkey]
