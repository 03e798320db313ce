"""builder=docker through a real mount, a real dockerd and the SeBS-style build
images made by scripts/prepare-images (SEBS.md section 6).

Nothing is mocked and nothing is skipped: without a daemon or the images these
tests fail (scripts/test and .ci/run provide both).
"""

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import Mount
from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, append, builds, edit_json, member, names,
                            open_errno, read, run, sebsfs_bin, state, systems)

SP = ".python_packages/lib/site-packages/"
TEST_USER = "sebsfs-test"


def docker(*args, check=True):
    r = run(["docker", *args], timeout=300)
    if check:
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


def build_image(root, platform, language, version):
    g = systems(root)["general"]
    return (f"{g['docker_repository']}:build.{platform}.{language}.{version}-"
            f"{g['SeBS_version']}")


@pytest.fixture(autouse=True)
def docker_ready(suite):
    """The daemon answers and the example suite's build images exist."""
    r = run(["docker", "version", "--format", "{{.Server.APIVersion}}"])
    assert r.returncode == 0, f"no Docker daemon (run scripts/services start): {r.stderr}"
    for lang, ver in (("python", "3.11"), ("nodejs", "20")):
        image = build_image(suite, "aws", lang, ver)
        assert docker("image", "inspect", image, check=False).returncode == 0, \
            f"build image {image} missing (run scripts/prepare-images)"


@pytest.fixture
def private_repo(suite):
    """Points the suite copy at a private repository holding tags of the real
    build images, so a test can retag or delete them without touching others."""
    repo = f"sebsfs-test/t{uuid.uuid4().hex[:10]}"
    g = systems(suite)["general"]
    made = []
    for plat in ("aws", "gcp"):
        for lang, ver in (("python", "3.11"), ("nodejs", "20")):
            src = build_image(suite, plat, lang, ver)
            dst = f"{repo}:build.{plat}.{lang}.{ver}-{g['SeBS_version']}"
            docker("tag", src, dst)
            made.append(dst)
    edit_json(suite / "configs" / "systems.json",
              lambda d: d["general"].__setitem__("docker_repository", repo))
    yield repo, made
    for tag in made + [f"{repo}:derived"]:
        docker("rmi", "-f", tag, check=False)


def rebuild_build_image(image, ctx):
    """A "rebuilt" build image: the same tag on a new ID (a derived image),
    old enough for sebsfs's image ID cache (BUILD_IMAGE_TTL_SECONDS) to
    have let go of the old ID."""
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {image}\nLABEL sebsfs.test.rebuilt={ctx.name}\n")
    docker("build", "-q", "-t", image, str(ctx))
    time.sleep(2.5)


def site_packages(data):
    return sorted(n[len(SP):] for n in names(data) if n.startswith(SP) and not n.endswith("/"))


def test_python_dependencies_installed_in_container(sebsfs):
    m = sebsfs(options=("builder=docker",))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    data = read(z)
    assert builds(z) == 1
    pkgs = site_packages(data)
    assert "sebs_example_util/__init__.py" in pkgs
    assert ".sebs-packaged" in pkgs, "package.sh did not run in the container"
    assert b"AWS" in member(data, SP + ".sebs-packaged")
    assert "package.sh" not in names(data), "the package.sh mount point must not ship"
    log = read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    assert "build container sebsfs/example-benchmarks:build.aws.python.3.11-1.2.1" in log
    assert "(builder: docker" in log
    # the container's own output streamed into the log
    assert "Successfully installed sebs-example-util" in log


def test_nodejs_file_dependency_installed_in_container(sebsfs):
    m = sebsfs(options=("builder=docker",))
    data = read(m.zip("gcp", "nodejs-20", DYNAMIC_HTML))
    files = names(data)
    assert "node_modules/sebs-example-lib/package.json" in files
    assert "node_modules/sebs-example-lib/index.js" in files
    assert "node_modules/.package-lock.json" not in files
    assert "index.js" in files  # gcp layout


def test_docker_matches_host_builder(sebsfs, tmp_path):
    """Same requirements, same installed files (metadata that names the
    installer or the machine aside)."""
    volatile = ("/INSTALLER", "/RECORD", "/REQUESTED", "/direct_url.json")
    host = sebsfs(options=("builder=host",), cache=tmp_path / "c-host")
    dock = sebsfs(options=("builder=docker",), cache=tmp_path / "c-docker")
    a = read(host.zip("azure", "python-3.11", DYNAMIC_HTML))
    b = read(dock.zip("azure", "python-3.11", DYNAMIC_HTML))
    fa = [f for f in site_packages(a) if not f.endswith(volatile)]
    fb = [f for f in site_packages(b) if not f.endswith(volatile)]
    assert fa == fb
    for f in fa:
        if not f.endswith(".sebs-packaged"):
            assert member(a, SP + f) == member(b, SP + f), f


def test_auto_picks_docker_and_says_so(sebsfs):
    m = sebsfs(options=())  # builder=auto is the default
    read(m.zip("local", "python-3.11", DYNAMIC_HTML))
    log = read(m.log("local", "python-3.11", DYNAMIC_HTML)).decode()
    assert "(builder: docker, auto: Docker daemon at unix:///var/run/docker.sock answered" in log


def test_previous_version_image_used_when_current_missing(sebsfs, suite):
    # no image exists for SeBS 9.9.9 and none can be pulled: fall back to 1.2.1
    def bump(d):
        d["general"]["SeBS_version"] = "9.9.9"
        d["general"]["previous_major_version"] = "1.2.1"
    edit_json(suite / "configs" / "systems.json", bump)
    m = sebsfs(options=("builder=docker",))
    data = read(m.zip("aws", "python-3.11", DYNAMIC_HTML))
    assert SP + "sebs_example_util/__init__.py" in names(data)
    log = read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    assert "build image sebsfs/example-benchmarks:build.aws.python.3.11-1.2.1" in log


def test_no_image_at_all_names_both_tags(sebsfs, suite):
    edit_json(suite / "configs" / "systems.json",
              lambda d: d["general"].update(SeBS_version="9.9.8", previous_major_version="9.9.7"))
    m = sebsfs(options=("builder=docker",))
    assert open_errno(m.zip("aws", "python-3.11", DYNAMIC_HTML)) == 5  # EIO
    log = read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    assert "build.aws.python.3.11-9.9.8" in log and "build.aws.python.3.11-9.9.7" in log
    assert "build failed" in log


def test_failing_install_gives_eio_and_keeps_old_package(sebsfs, suite):
    m = sebsfs(options=("builder=docker",))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    good = read(z)
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "python" / "requirements.txt",
           "./wheels/does-not-exist-1.0-py3-none-any.whl\n")
    assert open_errno(z) == 5
    log = read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    assert "does-not-exist" in log
    assert "exited with status" in log and "build failed" in log
    assert state(z) == "failed"
    assert (m.cache / "packages").is_dir()
    kept = [p.read_bytes() for p in (m.cache / "packages").iterdir()]
    assert good in kept
    assert not run(["docker", "ps", "-aq", "--filter",
                    "ancestor=sebsfs/example-benchmarks:build.aws.python.3.11-1.2.1"]).stdout.strip(), \
        "build containers must always be removed"


def test_rebuilt_build_image_invalidates_package(sebsfs, suite, private_repo):
    repo, made = private_repo
    m = sebsfs(options=("builder=docker",))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    read(z)
    read(z)
    assert builds(z) == 1
    rebuild_build_image(f"{repo}:build.aws.python.3.11-1.2.1", m.cache.parent / "derived-ctx")
    read(z)
    assert builds(z) == 2


def test_image_that_ignores_uid_fails_the_build(sebsfs, suite, private_repo):
    """An image whose container writes files as root (not CONTAINER_UID) must
    fail the build: the package would otherwise carry foreign-owned files."""
    repo, made = private_repo
    image = f"{repo}:build.gcp.python.3.11-1.2.1"
    ctx = suite.parent / "rootful-ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {image}\nENTRYPOINT []\nCMD [\"sh\", \"-c\", \"touch /mnt/function/root-owned\"]\n")
    docker("build", "-q", "-t", image, str(ctx))
    m = start_as_test_user(sebsfs, suite, ("builder=docker",))
    assert open_errno(m.zip("gcp", "python-3.11", DYNAMIC_HTML)) == 5
    log = read(m.log("gcp", "python-3.11", DYNAMIC_HTML)).decode()
    assert "root-owned" in log and "not owned by uid" in log


class UserMount(Mount):
    """A mount whose sebsfs runs as the unprivileged TEST_USER (in the docker group)."""

    def __init__(self, *args, user, binary, **kw):
        super().__init__(*args, **kw)
        self.user = user
        self.binary = binary

    @property
    def argv(self):
        return [str(self.binary), *super().argv[1:]]

    def start(self):
        pw = pwd.getpwnam(self.user)
        groups = [g.gr_gid for g in grp.getgrall() if self.user in g.gr_mem]
        for p in (self.mnt, self.cache):
            p.mkdir(exist_ok=True)
            os.chown(p, pw.pw_uid, pw.pw_gid)
        self.env["HOME"] = pw.pw_dir if os.path.isdir(pw.pw_dir) else str(self.cache)
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=self.env,
                                 user=pw.pw_uid, group=pw.pw_gid, extra_groups=groups)
        deadline = time.monotonic() + 10
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                pytest.fail(f"sebsfs (as {self.user}) exited {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"sebsfs (as {self.user}) did not mount:\n{self.stderr()}")
            time.sleep(0.02)
        return self


def start_as_test_user(sebsfs, suite, options):
    """Starts sebsfs as TEST_USER on a world-readable copy of the suite."""
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.fail(f"user {TEST_USER} missing (scripts/test creates it)")
    assert TEST_USER in grp.getgrnam("docker").gr_mem, f"{TEST_USER} must be in group docker"
    # this (root) test process reads the user's mount: allow_other, which an
    # unprivileged mount may only ask for with user_allow_other in fuse.conf
    with open("/etc/fuse.conf") as f:
        assert any(ln.strip() == "user_allow_other" for ln in f), \
            "/etc/fuse.conf needs user_allow_other (scripts/install-deps adds it)"
    base = Path(suite).parent
    # the test user must reach everything below the pytest tmp dir
    for p in [base, *base.parents]:
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o755)
    subprocess.run(["chmod", "-R", "a+rX", str(suite)], check=True)
    # The build tree may lie where the user cannot reach it (a checkout in
    # /root, mode 0700): the user runs a copy of the binary from below base.
    binary = base / "bin-user" / "sebsfs"
    if not binary.exists():
        binary.parent.mkdir(mode=0o755)
        shutil.copy(sebsfs_bin(), binary)
        binary.chmod(0o755)
    cache = base / "cache-user"
    m = UserMount(base, suite, cache, (*options, "allow_other"), f"user{len(sebsfs.mounts)}",
                  user=TEST_USER, binary=binary)
    sebsfs.mounts.append(m)
    return m.start()


def test_files_owned_by_caller(sebsfs, suite):
    """sebsfs as an unprivileged user: the container installs as that user, so
    the work folder (checked file by file by the builder) and the cache hold
    only the caller's files."""
    m = start_as_test_user(sebsfs, suite, ("builder=docker",))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    data = read(z)
    assert SP + "sebs_example_util/__init__.py" in names(data)
    log = read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    uid = pwd.getpwnam(TEST_USER).pw_uid
    assert f"(uid {uid}, gid" in log
    for p in m.cache.rglob("*"):
        assert p.lstat().st_uid == uid, f"{p} is owned by uid {p.lstat().st_uid}"
    data = read(m.zip("aws", "nodejs-20", DYNAMIC_HTML))
    assert "node_modules/sebs-example-lib/index.js" in names(data)


def test_daemon_unreachable_gives_clear_error_and_retry_works(sebsfs, tmp_path):
    """A missing socket at build time: EIO and a log line naming the socket;
    listing keeps working; once the socket is back, the next read builds."""
    sockdir = tmp_path / "dockersock"
    sockdir.mkdir()
    sock = sockdir / "docker.sock"
    m = Mount(tmp_path, tmp_path / "suite", tmp_path / "cache-nodaemon", ("builder=docker",),
              "nodaemon")
    m.env["DOCKER_HOST"] = f"unix://{sock}"
    sebsfs.mounts.append(m)
    m.start()
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    assert open_errno(z) == 5
    log = read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    assert str(sock) in log and "build failed" in log
    assert sorted(os.listdir(m.path("aws", "python-3.11")))  # listing still works
    assert state(z) == "failed"

    # a socket that exists but refuses connections
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    assert open_errno(z) == 5
    assert "build failed" in read(m.log("aws", "python-3.11", DYNAMIC_HTML)).decode()
    s.close()
    os.unlink(sock)

    # the daemon is back: a later read retries and succeeds
    os.symlink("/var/run/docker.sock", sock)
    data = read(z)
    assert SP + "sebs_example_util/__init__.py" in names(data)
    assert state(z) == "fresh"


# ------------------------------------------------- dependency layers (deplayer.h)

def layer_of(path):
    return (os.getxattr(path, "user.sebs.deps_hash").decode(),
            os.getxattr(path, "user.sebs.deps_reused").decode())


def test_code_edit_reuses_the_container_installed_layer(sebsfs, suite, tmp_path):
    """A one-line code edit starts no build container, and the package is
    byte-identical to a cold build and to an install in the work folder."""
    m = sebsfs(options=("builder=docker",))
    z = m.zip("aws", "nodejs-20", DYNAMIC_HTML)
    read(z)
    key, reused = layer_of(z)
    assert reused == "no"
    append(suite / BENCH_DIRS[DYNAMIC_HTML] / "nodejs" / "function.js", "\n// edited\n")
    rebuilt = read(z)
    assert layer_of(z) == (key, "yes")
    log = read(m.log("aws", "nodejs-20", DYNAMIC_HTML)).decode()
    assert "build container" not in log, "a reused layer must not start a container"
    # the same layer serves gcp: one image for every platform here, and no
    # package.sh, so nothing platform-specific reaches the install
    g = m.zip("gcp", "nodejs-20", DYNAMIC_HTML)
    read(g)
    assert layer_of(g) == (key, "yes")
    m.stop()
    cold = sebsfs(cache=tmp_path / "cold", options=("builder=docker",))
    assert read(cold.zip("aws", "nodejs-20", DYNAMIC_HTML)) == rebuilt
    cold.stop()
    flat = sebsfs(cache=tmp_path / "flat", options=("builder=docker", "dep_layers=off"))
    assert read(flat.zip("aws", "nodejs-20", DYNAMIC_HTML)) == rebuilt


def test_build_image_id_is_in_the_layer_key(sebsfs, suite, private_repo):
    repo, made = private_repo
    m = sebsfs(options=("builder=docker",))
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)
    read(z)
    key = layer_of(z)[0]
    image = f"{repo}:build.aws.python.3.11-1.2.1"
    rebuild_build_image(image, m.cache.parent / "derived-layer-ctx")
    read(z)
    new_key, reused = layer_of(z)
    assert new_key != key and reused == "no"
    layer_json = (m.cache / "layers" / new_key / "layer.json").read_text()
    image_id = docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    assert image_id in layer_json
