"""builder=docker on a remote Docker engine: a second dockerd of the test's
own on tcp://127.0.0.1:<port> with TLS (CA, server and client certificates
made here by openssl), which cannot see this machine's work folders, so
sebsfs copies them in and out through the archive API (docs/design.md).

The second daemon has its own --data-root, --exec-root, --pidfile and config
file, and a bridge of its own made here (never --bridge none: that deletes
docker0, the first daemon's bridge).  The build images are copied into it
from the main daemon with `docker save | docker load` (no network: nothing
can be pulled).  Nothing is mocked or skipped: without dockerd, openssl, ip
or the images (scripts/prepare-images) these tests fail.
"""

import os
import signal
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, SLEEP, alive, append, edit_json,
                            end_process, free_port, names, open_errno, read, run, state,
                            systems, wait_for)
from test_docker_builder import start_as_test_user

SP = ".python_packages/lib/site-packages/"
IMAGES = ("build.aws.python.3.11", "build.gcp.nodejs.20", "build.aws.java.17",
          "build.aws.cpp.all")
BRIDGE_ADDR = "10.213.77.1/24"


def openssl(*args, cwd):
    r = run(["openssl", *args], cwd=cwd)
    assert r.returncode == 0, f"openssl {' '.join(args)}: {r.stderr}"


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=sebsfs test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def make_cert(d, name, ca, extensions):
    (d / f"{name}.ext").write_text(extensions + "\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
            "-subj", f"/CN=sebsfs test {name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
            "-CAcreateserial", "-out", f"{name}-cert.pem", "-days", "2",
            "-extfile", f"{name}.ext", cwd=d)


def cert_dir(d, name, ca, cert=True):
    """A DOCKER_CERT_PATH folder: ca.pem (of ca), cert.pem and key.pem (the
    client's, unless cert is False); readable by the unprivileged test user."""
    out = d / name
    out.mkdir()
    shutil.copy(d / f"{ca}.pem", out / "ca.pem")
    if cert:
        shutil.copy(d / "client-cert.pem", out / "cert.pem")
        shutil.copy(d / "client-key.pem", out / "key.pem")
    for p in [out, *out.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return out


class RemoteDaemon:
    """A second dockerd on tcp://127.0.0.1:port with TLS, and everything it
    needs, under a short folder of its own (unix socket paths are limited)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="sebsfs-rd-"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.host = f"tcp://127.0.0.1:{self.port}"
        self.bridge = f"sebsfsrd{os.getpid() % 100000}"
        self.proc = None
        self.log = self.dir / "dockerd.log"

    def env(self, certs=None):
        """The environment of a docker client of this daemon (certs: a DOCKER_CERT_PATH)."""
        return {"DOCKER_HOST": self.host, "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": str(certs or self.certs)}

    def cli(self, *args, check=True, timeout=300):
        r = run(["docker", *args], timeout=timeout, env={**os.environ, **self.env()})
        if check:
            assert r.returncode == 0, f"docker {' '.join(args)} ({self.host}): {r.stderr}"
        return r

    def start(self):
        d = self.dir
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_cert(d, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
        make_cert(d, "client", "ca", "extendedKeyUsage=clientAuth")
        self.certs = cert_dir(d, "certs", "ca")
        self.wrong_ca = cert_dir(d, "certs-wrong-ca", "other-ca")
        self.no_client_cert = cert_dir(d, "certs-no-client", "ca", cert=False)
        (d / "daemon.json").write_text("{}\n")
        for argv in (["ip", "link", "add", "name", self.bridge, "type", "bridge"],
                     ["ip", "addr", "add", BRIDGE_ADDR, "dev", self.bridge],
                     ["ip", "link", "set", self.bridge, "up"]):
            r = run(argv)
            assert r.returncode == 0, f"{argv}: {r.stderr}"
        argv = ["dockerd", "--host", self.host, "--tlsverify",
                "--tlscacert", str(d / "ca.pem"), "--tlscert", str(d / "server-cert.pem"),
                "--tlskey", str(d / "server-key.pem"),
                "--data-root", str(d / "data"), "--exec-root", str(d / "exec"),
                "--pidfile", str(d / "dockerd.pid"), "--config-file", str(d / "daemon.json"),
                "--bridge", self.bridge, "--iptables=false", "--ip-masq=false"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        up = wait_for(lambda: self.proc.poll() is not None
                      or self.cli("version", check=False, timeout=30).returncode == 0, 60, 0.5)
        assert up and self.proc.poll() is None, \
            f"the second dockerd did not answer on {self.host}:\n{self.log.read_text()[-3000:]}"

    def load_images(self, tags):
        """docker save (main daemon) | docker load (this one), two processes
        joined by a pipe."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        save = subprocess.Popen(["docker", "save", *tags], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True,
                              text=True, timeout=600, env={**env, **self.env()})
        save.stdout.close()
        save_err = save.stderr.read().decode(errors="replace")
        assert save.wait(timeout=60) == 0, f"docker save {tags}: {save_err}"
        assert load.returncode == 0, f"docker load into {self.host}: {load.stderr}"

    def stop(self):
        """Stops dockerd (and so its containerd), whatever state it is in;
        removes its mounts, folder and bridge."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        pidfile = self.dir / "exec" / "containerd" / "containerd.pid"
        if pidfile.exists():
            try:
                pid = int(pidfile.read_text().strip())
            except ValueError:
                pid = 0
            if pid > 0 and alive(pid) and str(self.dir) in " ".join(
                    open(f"/proc/{pid}/cmdline").read().split("\0")):
                end_process(pid)
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f]
        for m in sorted((m for m in mounts if m.startswith(str(self.dir) + "/")), reverse=True):
            run(["umount", "-l", m])
        run(["ip", "link", "del", self.bridge])
        shutil.rmtree(self.dir, ignore_errors=True)


def image_tags(root):
    v = systems(root)["general"]["SeBS_version"]
    repo = systems(root)["general"]["docker_repository"]
    return [f"{repo}:{name}-{v}" for name in IMAGES]


@pytest.fixture(scope="module")
def remote():
    """The second daemon, with the build images of IMAGES, for the whole module."""
    from sebsfs_testlib import SUITE_SOURCE
    daemon = RemoteDaemon()
    try:
        daemon.start()
        daemon.load_images(image_tags(SUITE_SOURCE))
        yield daemon
    finally:
        daemon.stop()


def local_and_remote(sebsfs, tmp_path, remote):
    local = sebsfs(options=("builder=docker",), cache=tmp_path / "c-local",
                   env={"DOCKER_HOST": "unix:///var/run/docker.sock"})
    far = sebsfs(options=("builder=docker",), cache=tmp_path / "c-remote", env=remote.env())
    return local, far


def log_of(m, platform, runtime, bench):
    return read(m.log(platform, runtime, bench)).decode(errors="replace")


def remote_containers(remote, image):
    return remote.cli("ps", "-aq", "--filter", f"ancestor={image}").stdout.split()


def test_packages_through_the_remote_daemon_equal_local_ones(sebsfs, tmp_path, remote, suite):
    """python (dependency wheels and package.sh), nodejs (a file dependency),
    a java jar (Maven in the container) and a C++ zip (CMake in the
    container): the same bytes from both."""
    local, far = local_and_remote(sebsfs, tmp_path, remote)
    cases = (("aws", "python-3.11", DYNAMIC_HTML, ".zip"),
             ("gcp", "nodejs-20", DYNAMIC_HTML, ".zip"),
             ("aws", "java-17", DYNAMIC_HTML, ".jar"),
             ("aws", "cpp-all", SLEEP, ".zip"))
    for platform, runtime, bench, suffix in cases:
        a = read(local.path(platform, runtime, bench + suffix))
        b = read(far.path(platform, runtime, bench + suffix))
        assert a == b, f"{platform}/{runtime}/{bench}{suffix} differs between the daemons"
        log = read(far.path(platform, runtime, f"{bench}{suffix}.log")).decode()
        assert ("work folder copied in and out through the archive API: the Docker daemon at"
                f" {remote.host} is remote") in log, log
        assert "copied /mnt/function out of the container" in log
        local_log = read(local.path(platform, runtime, f"{bench}{suffix}.log")).decode()
        assert ("work folder bind-mounted: the Docker daemon at unix:///var/run/docker.sock"
                " is local") in local_log
    python = read(far.zip("aws", "python-3.11", DYNAMIC_HTML))
    assert SP + "sebs_example_util/__init__.py" in names(python)
    assert SP + ".sebs-packaged" in names(python), "package.sh did not run in the container"
    assert "package.sh" not in names(python), "the substituted package.sh must not ship"
    node = read(far.zip("gcp", "nodejs-20", DYNAMIC_HTML))
    assert "node_modules/sebs-example-lib/index.js" in names(node)
    for tag in image_tags(suite):
        assert not remote_containers(remote, tag), "build containers must always be removed"


@pytest.mark.parametrize("certs", ["wrong_ca", "no_client_cert"])
def test_tls_failure_is_eio_with_a_clear_log_line(sebsfs, tmp_path, remote, certs):
    m = sebsfs(options=("builder=docker",), cache=tmp_path / "c",
               env=remote.env(getattr(remote, certs)))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert open_errno(z) == 5  # EIO
    log = log_of(m, "aws", "python-3.11", DYNAMIC_HTML)
    assert f"{remote.host}: TLS with the Docker daemon failed" in log, log
    assert f"DOCKER_CERT_PATH ({getattr(remote, certs)}/ca.pem)" in log
    assert "build failed" in log
    assert state(z) == "failed"
    # the file system stays up
    assert sorted(os.listdir(m.path("aws", "python-3.11")))


def test_failed_remote_build_keeps_the_good_package(sebsfs, tmp_path, remote, suite):
    m = sebsfs(options=("builder=docker",), cache=tmp_path / "c", env=remote.env())
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    good = read(z)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "requirements.txt",
           "./wheels/does-not-exist-1.0-py3-none-any.whl\n")
    assert open_errno(z) == 5
    log = log_of(m, "aws", "python-3.11", DYNAMIC_HTML)
    assert "does-not-exist" in log and "exited with status" in log and "build failed" in log
    assert state(z) == "failed"
    assert good in [p.read_bytes() for p in (m.cache / "packages").iterdir()]
    assert not remote_containers(remote, image_tags(suite)[0])


@pytest.fixture
def remote_build_image(suite, remote):
    """Factory: a build image for aws/python-3.11 in the remote daemon only,
    derived from the real one with cmd as its command (and no entrypoint),
    in a private repository that the suite copy's systems.json then names."""
    repo = f"sebsfs-test/t{uuid.uuid4().hex[:10]}"
    made = []

    def make(cmd):
        v = systems(suite)["general"]["SeBS_version"]
        image = f"{repo}:build.aws.python.3.11-{v}"
        ctx = suite.parent / f"ctx-{len(made)}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM {image_tags(suite)[0]}\nENTRYPOINT []\nCMD [\"sh\", \"-c\", \"{cmd}\"]\n")
        remote.cli("build", "-q", "-t", image, str(ctx))
        made.append(image)
        edit_json(suite / "configs" / "systems.json",
                  lambda d: d["general"].__setitem__("docker_repository", repo))
        return image

    yield make
    for image in made:
        remote.cli("rmi", "-f", image, check=False)


def test_image_that_ignores_uid_fails_on_the_remote_path_too(sebsfs, suite, remote,
                                                             remote_build_image, monkeypatch):
    """As test_docker_builder's bind-mount test: a container that leaves a
    root-owned file fails the build of an unprivileged sebsfs, here seen in
    the uids of the tar the archive API returns."""
    image = remote_build_image("touch /mnt/function/root-owned")
    for k, val in remote.env().items():
        monkeypatch.setenv(k, val)
    m = start_as_test_user(sebsfs, suite, ("builder=docker",))
    monkeypatch.undo()
    assert open_errno(m.zip("aws", "python-3.11", DYNAMIC_HTML)) == 5
    log = log_of(m, "aws", "python-3.11", DYNAMIC_HTML)
    assert "archive API" in log
    assert "root-owned (uid 0)" in log and "not owned by uid" in log, log
    assert "CONTAINER_UID/CONTAINER_GID" in log
    assert not remote_containers(remote, image)


def test_build_time_limit_stops_a_remote_build(sebsfs, tmp_path, remote, remote_build_image):
    """-o build_timeout on the archive path: the build ends, its container is
    removed from the remote daemon, the worker is free again."""
    image = remote_build_image("sleep 600")
    m = sebsfs(options=("builder=docker", "build_timeout=5"), cache=tmp_path / "c",
               env=remote.env())
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    t0 = time.monotonic()
    assert open_errno(z) == 5
    assert time.monotonic() - t0 < 120, "the remote build outlived its time limit"
    log = log_of(m, "aws", "python-3.11", DYNAMIC_HTML)
    assert "archive API" in log
    assert "build time limit reached" in log, log
    assert state(z) == "failed"
    assert wait_for(lambda: not remote_containers(remote, image), 30), \
        "the timed-out build container was left in the remote daemon"
