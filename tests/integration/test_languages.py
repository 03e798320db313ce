"""Java and C++ packages (docs/languages.md) through a real mount, a real dockerd
and the Java/C++ build images scripts/prepare-images makes from Debian (OpenJDK
17 + Maven offline against Debian's Maven repository; cmake, g++, Boost and a
stand-in AWS Lambda C++ runtime).  Every artifact is read back and checked:
zip entries, function.json, the jar's classes run with `java -cp`, the C++
binary runs.  Nothing is mocked and nothing is skipped: without the daemon,
the images, java or unzip these tests fail.
"""

import json
import os
import shutil
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from sebsfs_testlib import (COMPILE_READ_TIMEOUT, DYNAMIC_HTML, SLEEP, assert_view_equals_unzip,
                            builds, docker, edit_json, function_tag, names, open_errno, read, run,
                            sha256, systems, xattr, zip_of)

BFS = "503.graph-bfs"
BENCH = {
    SLEEP: "benchmarks/000.microbenchmarks/010.sleep",
    DYNAMIC_HTML: "benchmarks/100.webapps/110.dynamic-html",
    BFS: "benchmarks/500.scientific/503.graph-bfs",
}
HANDLER = "org.serverlessbench.Handler"


def build_image(root, platform, language, version):
    g = systems(root)["general"]
    return f"{g['docker_repository']}:build.{platform}.{language}.{version}-{g['SeBS_version']}"


@pytest.fixture(autouse=True)
def images_ready(suite):
    """The daemon answers and the Java and C++ build images exist."""
    r = run(["docker", "version", "--format", "{{.Server.APIVersion}}"])
    assert r.returncode == 0, f"no Docker daemon (run scripts/services start): {r.stderr}"
    for plat, lang, ver in (("aws", "java", "17"), ("aws", "cpp", "all")):
        image = build_image(suite, plat, lang, ver)
        assert docker("image", "inspect", image, check=False).returncode == 0, \
            f"build image {image} missing (run scripts/prepare-images)"


@pytest.fixture
def repo():
    name = f"sebsfs-test/lang{uuid.uuid4().hex[:10]}"
    yield name
    ids = run(["docker", "images", "-q", "--filter", f"reference={name}"]).stdout.split()
    for i in sorted(set(ids)):
        docker("rmi", "-f", i, check=False)


def jar_path(m, platform, runtime, bench):
    return m.path(platform, runtime, f"{bench}.jar")


def log_of(path):
    return read(Path(f"{path}.log")).decode(errors="replace")


def run_java(jar_bytes, tmp_path, event):
    """Runs the wrapper's main on event with the jar alone on the class path;
    returns its JSON answer."""
    jar = tmp_path / f"j{uuid.uuid4().hex[:8]}.jar"
    jar.write_bytes(jar_bytes)
    r = run(["java", "-cp", str(jar), HANDLER, json.dumps(event)], timeout=120)
    assert r.returncode == 0, f"java -cp {jar} {HANDLER}: {r.stdout}\n{r.stderr}"
    return json.loads(r.stdout.strip().splitlines()[-1])


def unzip_to(data, dest):
    """Extracts with the real unzip (which keeps the x bits)."""
    dest.mkdir(parents=True)
    z = dest.parent / f"{dest.name}.zip"
    z.write_bytes(data)
    r = run(["unzip", "-q", str(z), "-d", str(dest)])
    assert r.returncode == 0, r.stderr
    return dest


def test_runtime_folders_are_the_ones_sebs_builds(sebsfs):
    m = sebsfs(options=("builder=docker",))
    want = {
        "aws": {"java-11", "java-17", "java-17-arm64", "cpp-all"},
        "azure": {"java-17"},
        "gcp": {"java-17"},
        "openwhisk": {"java-8"},
        "local": set(),
    }
    for plat, folders in want.items():
        listed = {d for d in os.listdir(m.path(plat)) if d.startswith(("java", "cpp"))}
        assert listed == folders, plat
    # aws java: the jar is the package (with its directory view); images too
    # (aws deploys containers)
    assert sorted(os.listdir(m.path("aws", "java-17"))) == sorted(
        f"{b}{s}" for b in (SLEEP, DYNAMIC_HTML)
        for s in (".jar", ".jar.log", "", ".image", ".image.log"))
    # openwhisk java: container only
    assert sorted(os.listdir(m.path("openwhisk", "java-8"))) == sorted(
        f"{b}{s}" for b in (SLEEP, DYNAMIC_HTML) for s in (".image", ".image.log"))
    assert sorted(os.listdir(m.path("azure", "java-17"))) == sorted(
        f"{b}{s}" for b in (SLEEP, DYNAMIC_HTML) for s in (".zip", ".zip.log", ""))
    cpp = os.listdir(m.path("aws", "cpp-all"))
    assert f"{SLEEP}.zip" in cpp and f"{BFS}.zip" in cpp and f"{DYNAMIC_HTML}.zip" not in cpp
    # listing never builds
    st = os.stat(jar_path(m, "aws", "java-17", SLEEP))
    assert st.st_size == 0 and builds(jar_path(m, "aws", "java-17", SLEEP)) == 0
    assert not os.path.exists(m.path("aws", "java-17", f"{SLEEP}.zip"))
    assert not os.path.exists(m.path("openwhisk", "java-8", f"{SLEEP}.zip"))


def test_aws_java_jar_built_by_maven_in_the_build_container(sebsfs, tmp_path):
    m = sebsfs(options=("builder=docker",))
    p = jar_path(m, "aws", "java-17", DYNAMIC_HTML)
    data = read(p)
    assert builds(p) == 1
    assert xattr(p, "user.sebs.sha256") == sha256(data)
    entries = names(data)
    # the JAR convention: the manifest first
    assert entries[:2] == ["META-INF/", "META-INF/MANIFEST.MF"], entries[:4]
    for cls in ("org/serverlessbench/Handler.class", "function/Function.class",
                "com/fasterxml/jackson/databind/ObjectMapper.class"):
        assert cls in entries, f"{cls} not in the jar (the shade plugin bundles dependencies)"
    # systems.json's packages replaced the pom's placeholder
    # (Maven keeps the project's pom in the jar; the shaded ones are the dependencies')
    pom = "META-INF/maven/function/benchmark/pom.xml"
    assert pom in entries, entries
    text = zip_of(data).read(pom).decode()
    assert "<!-- PLATFORM_DEPENDENCIES -->" not in text
    assert "<artifactId>jackson-databind</artifactId>" in text
    # the classes load and run, with the shaded dependency
    out = run_java(data, tmp_path, {"username": "sebsfs", "random_len": 3})
    assert "sebsfs" in json.dumps(out), out
    log = log_of(p)
    assert "build container sebsfs/example-benchmarks:build.aws.java.17-1.2.1" in log
    assert "BUILD SUCCESS" in log
    assert "re-packed" in log
    # reproducible: another machine (cache) builds the same bytes
    other = sebsfs(options=("builder=docker",), cache=tmp_path / "cache2")
    assert read(jar_path(other, "aws", "java-17", DYNAMIC_HTML)) == data


def test_jar_directory_view_equals_unzip(sebsfs, tmp_path):
    # the view of a jar (tests/integration/test_dir_views.py has the zips):
    # built like an open of the jar, copied out with cp -r
    m = sebsfs(options=("builder=docker",))
    got = assert_view_equals_unzip(m, tmp_path, "aws", "java-17", SLEEP, suffix=".jar")
    assert "META-INF/MANIFEST.MF" in got
    assert any(rel.endswith(".class") for rel in got)
    assert builds(jar_path(m, "aws", "java-17", SLEEP)) == 1


def test_azure_java_zip_layout(sebsfs, tmp_path):
    m = sebsfs(options=("builder=docker",))
    data = read(m.zip("azure", "java-17", DYNAMIC_HTML))
    entries = names(data)
    assert "lib/function.jar" in entries and "host.json" in entries
    assert "handler/function.json" in entries
    for gone in ("pom.xml", "src/", "target/", "handler/pom.xml", "handler/src/",
                 "handler/target/", "function.jar"):
        assert gone not in entries, gone
    assert not [n for n in entries if "/src/" in n or n.startswith("src")], entries
    fn = json.loads(zip_of(data).read("handler/function.json"))
    assert fn["scriptFile"] == "../lib/function.jar"
    assert fn["entryPoint"] == "org.serverlessbench.Handler.handleRequest"
    assert fn["bindings"][0]["type"] == "httpTrigger"
    assert json.loads(zip_of(data).read("host.json"))["version"] == "2.0"
    # the data init.sh added is in handler/
    assert any(n.startswith("handler/templates/") for n in entries), entries
    out = run_java(zip_of(data).read("lib/function.jar"), tmp_path, {"username": "az"})
    assert "az" in json.dumps(out)


def test_gcp_java_zip_layout(sebsfs, tmp_path):
    m = sebsfs(options=("builder=docker",))
    data = read(m.zip("gcp", "java-17", SLEEP))
    entries = names(data)
    assert "function.jar" in entries
    assert "function/pom.xml" in entries
    assert "function/src/main/java/org/serverlessbench/Handler.java" in entries
    assert "function/src/main/java/function/Function.java" in entries
    assert not [n for n in entries if n.startswith("function/target")], entries
    pom = zip_of(data).read("function/pom.xml").decode()
    assert "<!-- PLATFORM_DEPENDENCIES -->" not in pom and "<artifactId>gson</artifactId>" in pom
    out = run_java(zip_of(data).read("function.jar"), tmp_path, {"sleep": 0})
    assert out is not None


def test_cpp_zip_runs(sebsfs, tmp_path):
    m = sebsfs(options=("builder=docker",))
    z = m.zip("aws", "cpp-all", BFS)
    data = read(z)
    assert builds(z) == 1
    entries = names(data)
    assert "bin/benchmark" in entries and "bootstrap" in entries, entries
    d = unzip_to(data, tmp_path / "bfs")
    exe = d / "bin" / "benchmark"
    assert os.stat(exe).st_mode & stat.S_IXUSR and os.stat(d / "bootstrap").st_mode & stat.S_IXUSR
    event = {"vertices": 4, "edges": [[0, 1], [1, 2], [2, 3]], "source": 0}
    r = subprocess.run([str(exe)], input=json.dumps(event), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert "3" in json.dumps(answer), answer
    log = log_of(z)
    assert "build container sebsfs/example-benchmarks:build.aws.cpp.all-1.2.1" in log
    assert "CMakeLists.txt generated (1 cpp_dependencies)" in log
    # reproducible across machines, like every zip
    other = sebsfs(options=("builder=docker",), cache=tmp_path / "cache2")
    assert read(other.zip("aws", "cpp-all", BFS)) == data


def test_broken_inputs_fail_with_a_clear_log(sebsfs, suite):
    m = sebsfs(options=("builder=docker",))
    pom = suite / BENCH[SLEEP] / "java" / "pom.xml"
    pom.write_text(pom.read_text().replace("<!-- PLATFORM_DEPENDENCIES -->", ""))
    edit_json(suite / BENCH[BFS] / "config.json",
              lambda c: c.__setitem__("cpp_dependencies", ["boost", "nosuchlib"]))
    p = jar_path(m, "aws", "java-17", SLEEP)
    assert open_errno(p) == 5
    assert "<!-- PLATFORM_DEPENDENCIES -->" in log_of(p)
    z = m.zip("aws", "cpp-all", BFS)
    assert open_errno(z) == 5
    log = log_of(z)
    assert "nosuchlib" in log and "boost" in log
    # the filesystem stays up and other packages still build
    assert len(read(m.zip("aws", "cpp-all", SLEEP))) > 0


def test_builder_none_cannot_make_java_or_cpp(sebsfs):
    m = sebsfs(options=("builder=none",))
    p = m.zip("azure", "java-17", SLEEP)
    assert open_errno(p) == 5
    assert "builder=none cannot make a java package" in log_of(p)
    z = m.zip("aws", "cpp-all", SLEEP)
    assert open_errno(z) == 5
    assert "builder=none cannot make a cpp package" in log_of(z)


def test_java_and_cpp_function_images(sebsfs, repo, tmp_path):
    m = sebsfs(options=("builder=docker", f"repository={repo}"))
    # openwhisk: Maven runs inside Dockerfile.function; the jar is in the image
    doc = json.loads(read(m.path("openwhisk", "java-8", f"{SLEEP}.image")))
    assert doc["image"] == f"{repo}:{function_tag('openwhisk', SLEEP, 'java-8')}"
    r = docker("run", "--rm", "--entrypoint", "java", doc["image"], "-cp",
               "/function/function.jar", HANDLER, '{"sleep": 0}')
    assert r.stdout.strip(), r.stderr
    # aws: Maven ran in the builder stage, the classes are in the task root
    doc = json.loads(read(m.path("aws", "java-17", f"{DYNAMIC_HTML}.image")))
    assert doc["image"] == f"{repo}:{function_tag('aws', DYNAMIC_HTML, 'java-17')}"
    r = docker("run", "--rm", "--entrypoint", "java", doc["image"], "-cp", "/var/task",
               HANDLER, '{"username": "img"}')
    assert "img" in r.stdout, r.stdout + r.stderr
    # gcp: function.jar where the invoker looks for it
    doc = json.loads(read(m.path("gcp", "java-17", f"{SLEEP}.image")))
    r = docker("run", "--rm", "--entrypoint", "java", doc["image"], "-cp",
               "/workspace/function.jar", HANDLER, '{"sleep": 0}')
    assert r.stdout.strip(), r.stderr
    # aws cpp: the dependency images filled in, the binary answers
    img = m.path("aws", "cpp-all", f"{BFS}.image")
    doc = json.loads(read(img, timeout=COMPILE_READ_TIMEOUT))
    log = read(Path(f"{img}.log")).decode()
    assert "dependency images filled in" in log
    for dep in ("runtime", "boost", "rapidjson"):
        assert f"dependencies-{dep}.aws.cpp.all-1.2.1 as {dep}" in log, dep
    event = {"vertices": 3, "edges": [[0, 1], [1, 2]], "source": 0}
    r = subprocess.run(["docker", "run", "--rm", "-i", doc["image"]], input=json.dumps(event),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)


def test_host_builder_java_equals_docker(sebsfs, tmp_path):
    """builder=host runs this machine's mvn (offline against Debian's Maven
    repository through a settings.xml in user.home, which Java takes from the
    password file, not from HOME: hence MAVEN_OPTS): same jar, byte for byte, as
    the build container's (same JDK and Maven plugins from Debian)."""
    assert shutil.which("mvn") and shutil.which("java"), "mvn/java missing (scripts/install-deps)"
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>debian</id><mirrorOf>*</mirrorOf>"
        "<url>file:///usr/share/maven-repo</url></mirror></mirrors></settings>\n")
    host = sebsfs(options=("builder=host",), cache=tmp_path / "c-host", env={"MAVEN_OPTS": f"-Duser.home={home}"})
    a = read(jar_path(host, "aws", "java-17", SLEEP))
    assert "mvn -DskipTests clean package (host)" in log_of(jar_path(host, "aws", "java-17", SLEEP))
    dock = sebsfs(options=("builder=docker",), cache=tmp_path / "c-docker")
    b = read(jar_path(dock, "aws", "java-17", SLEEP))
    assert sorted(names(a)) == sorted(names(b))
    assert a == b


def test_cpp_image_follows_its_dependency_images(sebsfs, suite, repo, tmp_path):
    """A dependency image rebuilt under its tag rebuilds the function images
    made from it (its ID is part of the image's inputs).  The images live in
    a private repository, so retagging touches nothing of other tests."""
    g = systems(suite)["general"]
    private = f"sebsfs-test/dep{uuid.uuid4().hex[:10]}"
    ver = g["SeBS_version"]
    made = []
    for name in ("build.aws.cpp.all", "dependencies-runtime.aws.cpp.all",
                 "dependencies-boost.aws.cpp.all", "dependencies-rapidjson.aws.cpp.all"):
        dst = f"{private}:{name}-{ver}"
        docker("tag", f"{g['docker_repository']}:{name}-{ver}", dst)
        made.append(dst)
    edit_json(suite / "configs" / "systems.json",
              lambda d: d["general"].__setitem__("docker_repository", private))
    try:
        m = sebsfs(options=("builder=docker", f"repository={repo}"))
        img = m.path("aws", "cpp-all", f"{SLEEP}.image")
        first = json.loads(read(img, timeout=COMPILE_READ_TIMEOUT))
        assert builds(img) == 1
        assert json.loads(read(img)) == first and builds(img) == 1
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(f"FROM {made[2]}\nLABEL sebsfs.test.rebuilt={ctx}\n")
        docker("build", "-q", "-t", made[2], str(ctx))
        time.sleep(2.5)  # past BUILD_IMAGE_TTL_SECONDS: the old ID is let go
        second = json.loads(read(img, timeout=COMPILE_READ_TIMEOUT))
        assert builds(img) == 2, "a rebuilt dependency image must rebuild the function image"
        assert second["input_hash"] != first["input_hash"]
    finally:
        for tag in made:
            docker("rmi", "-f", tag, check=False)


def test_java_version_is_the_compile_target(sebsfs):
    """The pom reads ${env.JAVA_VERSION}: java-11's classes are class file
    version 55, java-17's 61 (the build images set JAVA_VERSION per tag)."""
    m = sebsfs(options=("builder=docker",))
    for runtime, major in (("java-11", 55), ("java-17", 61)):
        data = read(jar_path(m, "aws", runtime, SLEEP))
        cls = zip_of(data).read("function/Function.class")
        assert cls[:4] == b"\xca\xfe\xba\xbe"
        assert int.from_bytes(cls[6:8], "big") == major, runtime
