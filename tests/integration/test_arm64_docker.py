"""arm64 packages with builder=docker: sebsfs runs the build image SeBS would
(named without an architecture) with TARGET_ARCHITECTURE=arm64, and the
image's installer cross-installs, as SeBS's do.  The build images here are
derived from the suite's test build images with this tree's
scripts/images/installer.sh, in a private repository."""

import uuid

import pytest

from sebsfs_testlib import SOURCE_ROOT, edit_json, log_text, member, names, read, run, systems
from test_arm64 import BENCH, SP, bench, wheel_tag  # noqa: F401 (bench is a fixture)


def docker(*args):
    r = run(["docker", *args], timeout=300)
    assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


@pytest.fixture
def current_installer_images(suite, tmp_path):
    """aws python-3.11 and nodejs-20 build images with this tree's installer."""
    g = systems(suite)["general"]
    repo = f"sebsfs-test/a{uuid.uuid4().hex[:10]}"
    ctx = tmp_path / "image-ctx"
    ctx.mkdir()
    (ctx / "installer.sh").write_bytes((SOURCE_ROOT / "scripts/images/installer.sh").read_bytes())
    (ctx / "installer.sh").chmod(0o755)  # COPY keeps the mode
    made = []
    for lang, ver in (("python", "3.11"), ("nodejs", "20")):
        tag = f"build.aws.{lang}.{ver}-{g['SeBS_version']}"
        src = f"{g['docker_repository']}:{tag}"
        r = run(["docker", "image", "inspect", src], timeout=60)
        assert r.returncode == 0, f"build image {src} missing (run scripts/prepare-images)"
        (ctx / "Dockerfile").write_text(
            f"FROM {src}\nCOPY installer.sh /sebs/installer.sh\n")
        docker("build", "-q", "-t", f"{repo}:{tag}", str(ctx))
        made.append(f"{repo}:{tag}")
    edit_json(suite / "configs" / "systems.json",
              lambda d: d["general"].__setitem__("docker_repository", repo))
    yield repo
    for tag in made:
        run(["docker", "rmi", "-f", tag], timeout=120)


def test_docker_builder_installs_aarch64_wheels(sebsfs, bench, current_installer_images):
    m = sebsfs(options=("builder=docker",))
    arm = read(m.zip("aws", "python-3.11-arm64", BENCH))
    assert member(arm, SP + "archpkg/__init__.py") == b'ARCH = "aarch64"\n'
    assert wheel_tag(arm) == ["Tag: cp311-cp311-manylinux_2_17_aarch64"]
    log = log_text(m, "aws", "python-3.11-arm64", BENCH)
    assert "--platform manylinux_2_17_aarch64 --only-binary=:all:" in log
    # the same image as x64's: SeBS's build image names have no architecture
    assert f"build container {current_installer_images}:build.aws.python.3.11-" in log

    x64 = read(m.zip("aws", "python-3.11", BENCH))
    assert wheel_tag(x64) == ["Tag: py3-none-manylinux_2_17_x86_64"]


def test_docker_builder_passes_the_arch_to_npm(sebsfs, bench, current_installer_images):
    m = sebsfs(options=("builder=docker",))
    arm = read(m.zip("aws", "nodejs-20-arm64", BENCH))
    # npm_config_arch, which node-gyp and prebuild-install read
    assert member(arm, "node_modules/archrec/arch.txt") == b"arm64"
    assert "npm install --no-audit --no-fund --arch=arm64 --cpu=arm64" in log_text(
        m, "aws", "nodejs-20-arm64", BENCH)
    x64 = read(m.zip("aws", "nodejs-20", BENCH))
    assert member(x64, "node_modules/archrec/arch.txt") == b"x64"
    assert "node_modules/x64only/index.js" in names(x64)
