"""Helpers shared by the sebsfs integration tests (not a test module).

Everything here talks to a real FUSE mount started by conftest.py; nothing
is mocked.  Paths inside the mount are pathlib.Path objects.
"""

import errno
import hashlib
import io
import json
import os
import signal
import socket
import stat
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest

SOURCE_ROOT = Path(os.environ.get("SEBSFS_SOURCE_ROOT")
                   or Path(__file__).resolve().parents[2])
SUITE_SOURCE = SOURCE_ROOT / "examples" / "suite"

PLATFORMS = ["aws", "azure", "gcp", "local", "openwhisk"]
DYNAMIC_HTML = "110.dynamic-html"
COMPRESSION = "311.compression"
SLEEP = "010.sleep"
BENCH_DIRS = {
    DYNAMIC_HTML: "benchmarks/100.webapps/110.dynamic-html",
    COMPRESSION: "benchmarks/300.utilities/311.compression",
    SLEEP: "benchmarks/000.microbenchmarks/010.sleep",
}
WHEEL = {"3.10": "0.9.0", "3.11": "1.0.0"}   # sebs_example_util version per requirements file
READ_TIMEOUT = 180                            # seconds; a hung read fails the test
# a cold build that compiles (a C++ function image: g++ over Boost in a
# builder stage) on a slow machine (fuse-overlayfs under dockerd took more
# than 180 s on a fresh-machine run); still a bound on a hang, not a timing
COMPILE_READ_TIMEOUT = 900

AZURE_FUNCTION_JSON = {
    "scriptFile": None,  # filled per language
    "bindings": [
        {"authLevel": "anonymous", "type": "httpTrigger", "direction": "in",
         "name": "req", "methods": ["get", "post"]},
        {"type": "http", "direction": "out", "name": "$return"},
    ],
}
AZURE_HOST_JSON = {
    "version": "2.0",
    "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle",
                        "version": "[4.0.0, 5.0.0)"},
}


def sebsfs_bin():
    b = os.environ.get("SEBSFS_BIN") or str(SOURCE_ROOT / "build" / "src" / "fs" / "sebsfs")
    if not os.access(b, os.X_OK):
        pytest.fail(f"sebsfs binary not found or not executable: {b} (set SEBSFS_BIN)")
    return b


def sanitized_build():
    """True when the sebsfs under test is built with AddressSanitizer (.ci/run's
    second pass): its memory figures then measure ASan's shadow memory and
    quarantine, not sebsfs, and memory bounds cannot be checked."""
    with open(sebsfs_bin(), "rb") as f:
        return b"__asan_init" in f.read()


def mounted(path):
    """True when path is a mount point, also when its FUSE daemon died (then
    os.path.ismount cannot stat it: "Transport endpoint is not connected")."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def offline_env(tmp_path):
    """Environment for sebsfs and its builders: strictly offline, no user caches."""
    env = dict(os.environ)
    env.update({
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "npm_config_offline": "true",
        "npm_config_update_notifier": "false",
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
    })
    return env


def run_sebsfs(tmp_path, *args, timeout=20, cwd=None):
    """Runs sebsfs in the foreground (in cwd) for a start that should fail;
    "@MNT@" in args is a fresh mount point.  A run that mounts instead is
    unmounted and reported."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    argv = [sebsfs_bin(), *[str(a).replace("@MNT@", str(mnt)) for a in args]]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           env=offline_env(tmp_path), stdin=subprocess.DEVNULL, cwd=cwd)
    except subprocess.TimeoutExpired:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        pytest.fail(f"{argv} did not exit within {timeout} s (did it mount?)")
    mounted = os.path.ismount(mnt)
    if mounted:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
    assert not mounted, f"{argv} left a mount behind"
    return r


def one_line_error(r, *words):
    """r (from run_sebsfs) failed with exit 1 and one "sebsfs: " line holding words."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("sebsfs: "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "AddressSanitizer" not in r.stderr


# ----------------------------------------------------------------- xattrs, io

def xattr(path, name):
    """Value of extended attribute name (str), or None when it is absent."""
    try:
        return os.getxattr(path, name).decode()
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        raise


def state(path):
    return xattr(path, "user.sebs.state")


def builds(path):
    """user.sebs.builds as int (absent counts as 0)."""
    v = xattr(path, "user.sebs.builds")
    return 0 if v is None else int(v)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def with_timeout(fn, timeout=READ_TIMEOUT, what="operation"):
    """Runs fn() in a thread; fails the test if it does not return in time.
    (A read blocked in a hung FUSE daemon is released by the fixture's
    teardown, which unmounts and kills the daemon.)"""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: B902 - re-raised below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"{what} did not finish within {timeout} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def read(path, timeout=READ_TIMEOUT):
    def go():
        with open(path, "rb") as f:
            return f.read()
    return with_timeout(go, timeout, f"reading {path}")


def open_errno(path):
    """errno of a failing open+read of path, or None if it succeeded."""
    def go():
        try:
            with open(path, "rb") as f:
                f.read()
        except OSError as e:
            return e.errno
        return None
    return with_timeout(go, READ_TIMEOUT, f"opening {path}")


def log_text(mount, platform, runtime, bench):
    """The package's .zip.log as text."""
    return read(mount.log(platform, runtime, bench)).decode(errors="replace")


def zip_of(data):
    return zipfile.ZipFile(io.BytesIO(data))


def names(data):
    return zip_of(data).namelist()


def member(data, name):
    return zip_of(data).read(name)


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def docker(*args, check=True, timeout=300):
    """The docker CLI on the default daemon; asserts success unless check=False."""
    r = run(["docker", *args], timeout=timeout)
    if check:
        assert r.returncode == 0, f"docker {' '.join(args)}: {r.stderr}"
    return r


def remove_images(repo):
    """Removes from the shared daemon every image of repository repo, local
    or tagged for a registry (<registry>/<repo>)."""
    ids = run(["docker", "images", "-q", "--filter", f"reference=*{repo}*"]).stdout.split()
    ids += run(["docker", "images", "-q", "--filter", f"reference=*/{repo}*"]).stdout.split()
    ids += run(["docker", "images", "-q", repo]).stdout.split()
    for i in sorted(set(ids)):
        docker("rmi", "-f", i, check=False)


def cmdline(pid):
    """The command line of pid as one string ("" when it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_for(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def edit_json(path, fn):
    with open(path) as f:
        data = json.load(f)
    fn(data)
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


# ------------------------------------------------------------ private registry

def alive(pid):
    """pid exists and is no zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return not f.read().split(") ")[-1].startswith("Z")
    except OSError:
        return False


def end_process(pid, timeout=30):
    """SIGTERM, then SIGKILL, one process started by these tests."""
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    if not wait_for(lambda: not alive(pid), timeout, 0.1):
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10, 0.1)


class PrivateRegistry:
    """A docker-registry of a test's own on 127.0.0.1:port, configured as
    scripts/services configures the shared one; with htpasswd (the path of
    an htpasswd file of bcrypt entries), it wants a login (Basic); with token
    (distribution's `auth: token` settings: realm, service, issuer,
    rootcertbundle), it wants a bearer token from that realm."""

    def __init__(self, base, port, htpasswd=None, token=None):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.addr = f"127.0.0.1:{port}"
        self.config = self.base / "registry.yml"
        auth = ""
        if htpasswd:
            auth = f"auth:\n  htpasswd:\n    realm: sebsfs-test\n    path: {htpasswd}\n"
        elif token:
            auth = "auth:\n  token:\n" + "".join(f"    {k}: {v}\n" for k, v in token.items())
        self.config.write_text(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {self.base / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.addr}\nhealth:\n  storagedriver:\n    enabled: false\n"
            + auth)
        self.proc = None

    def answers(self):
        """/v2/ answers 200, or 401 when a login is wanted."""
        try:
            with urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=2):
                return True
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            return False

    def start(self):
        with open(self.base / "registry.log", "ab") as log:
            self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        assert wait_for(self.answers, 30, 0.2), (self.base / "registry.log").read_text()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            end_process(self.proc.pid)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def manifest(self, repo, ref):
        req = urllib.request.Request(
            f"http://{self.addr}/v2/{repo}/manifests/{ref}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status


# docker-credential-<name> as Docker's clients run it: `get`, the server URL
# on stdin, {ServerURL, Username, Secret} on stdout; "credentials not found
# in native keychain" (exit 1) for a server it does not know.  Every call is
# recorded in the calls file.
CREDENTIAL_HELPER = """#!/usr/bin/python3
import json, sys
server = sys.stdin.read()
with open({calls!r}, "a") as f:
    f.write(" ".join(sys.argv[1:]) + " " + server + "\\n")
if sys.argv[1:] != ["get"]:
    sys.exit(2)
if server == {addr!r}:
    print(json.dumps({{"ServerURL": server, "Username": {user!r}, "Secret": {secret!r}}}))
else:
    print("credentials not found in native keychain")
    sys.exit(1)
"""


def install_credential_helper(bindir, name, text):
    """Writes the program docker-credential-<name> (text) into bindir."""
    prog = Path(bindir) / f"docker-credential-{name}"
    prog.write_text(text)
    prog.chmod(0o755)


def credential_helper(bindir, name, calls, addr, user, secret):
    """Installs a helper that answers user and secret for addr only."""
    install_credential_helper(bindir, name, CREDENTIAL_HELPER.format(
        calls=str(calls), addr=addr, user=user, secret=secret))


def mount_with_docker_config(sebsfs, tmp_path, bindir, registry, repo, config):
    """A host-builder mount pushing to registry/repo, whose Docker config is
    config (a dict written as DOCKER_CONFIG's config.json) and whose PATH
    starts with bindir (its credential helpers)."""
    cfgdir = tmp_path / f"docker-config-{uuid.uuid4().hex[:6]}"
    cfgdir.mkdir()
    (cfgdir / "config.json").write_text(json.dumps(config))
    env = {"DOCKER_CONFIG": str(cfgdir), "PATH": f"{bindir}:{os.environ['PATH']}"}
    return sebsfs(options=("builder=host", f"repository={repo}", f"registry={registry}"),
                  env=env)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ----------------------------------------------------- expected package layouts

def systems(root):
    with open(Path(root) / "configs" / "systems.json") as f:
        return json.load(f)


def function_tag(platform, bench, runtime, prefix=None, root=SUITE_SOURCE):
    """SeBS's function image tag (sebs/config.py benchmark_image_tag) for a
    runtime folder such as python-3.11 or nodejs-20-arm64."""
    arch = "x64"
    if runtime.endswith(("-arm64", "-x64")):
        runtime, arch = runtime.rsplit("-", 1)
    language, version = runtime.split("-", 1)
    sebs_version = systems(root)["general"].get("SeBS_version", "unknown")
    tag = f"function.{platform}.{bench}.{language}-{version}-{arch}"
    if prefix:
        tag = f"{tag}-{prefix}"
    return f"{tag}-{sebs_version}"


def _work_folder_110(root, platform, language, version, with_deps):
    """(required, optional) sets of file paths of the work folder of
    110.dynamic-html after steps 2-6 (SEBS.md 4), before the layout step."""
    root = Path(root)
    bench = root / BENCH_DIRS[DYNAMIC_HTML]
    langcfg = systems(root)[platform]["languages"][language]
    required, optional = set(), set()
    wrappers = set(langcfg["deployment"]["files"])
    install = with_deps and "build" in langcfg["images"]
    if language == "python":
        required |= {"function.py", "requirements.txt", "requirements.txt.3.10",
                     "templates/template.html"}
        required |= {"wheels/" + p.name for p in (bench / "python" / "wheels").iterdir()}
        if install:
            sp = ".python_packages/lib/site-packages/"
            info = f"{sp}sebs_example_util-{WHEEL[version]}.dist-info/"
            required |= {sp + "sebs_example_util/__init__.py", sp + ".sebs-packaged",
                         info + "METADATA", info + "WHEEL", info + "RECORD",
                         info + "top_level.txt"}
            optional |= {info + "INSTALLER", info + "REQUESTED"}
    else:
        required |= {"function.js", "package.json", "templates/template.html",
                     "vendor/sebs-example-lib-1.0.0.tgz"}
        if install:
            with tarfile.open(bench / "nodejs" / "vendor" / "sebs-example-lib-1.0.0.tgz") as t:
                for m in t.getmembers():
                    if m.isfile():
                        required.add("node_modules/sebs-example-lib/" + m.name.split("/", 1)[1])
            optional.add("package-lock.json")
    # a wrapper never overwrites a benchmark file; here none collide
    required |= wrappers
    return required, optional


def apply_layout(platform, language, paths):
    """Maps work-folder paths to zip paths per SEBS.md section 5."""
    handler = "handler.py" if language == "python" else "handler.js"
    deps = ".python_packages" if language == "python" else "node_modules"
    depfile = "requirements.txt" if language == "python" else "package.json"
    out = set()
    for p in paths:
        top = p.split("/", 1)[0]
        if platform in ("aws", "local"):
            out.add(p if top in (handler, depfile, deps) else "function/" + p)
        elif platform == "gcp":
            if top == handler:
                out.add("main.py" if language == "python" else "index.js")
            elif top == deps:
                out.add(p)
            else:
                out.add("function/" + p)
        elif platform == "azure":
            out.add(p if top in (depfile, deps) else "handler/" + p)
        elif platform == "openwhisk":
            entry = "__main__.py" if language == "python" else "index.js"
            if p == entry:
                out.add(p)
        else:
            raise AssertionError(platform)
    return out


def expected_110(root, platform, language, version, with_deps=True):
    """(required, optional) zip file entries of 110.dynamic-html."""
    req, opt = _work_folder_110(root, platform, language, version, with_deps)
    req, opt = apply_layout(platform, language, req), apply_layout(platform, language, opt)
    if platform == "azure":
        req |= {"handler/function.json", "host.json"}
    return req, opt


def entries_below(folder):
    """(relative path, path, lstat) of every entry below folder, os.walk's order."""
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            yield os.path.relpath(p, folder), p, os.lstat(p)


def ls_outside_views(mnt, timeout):
    """ls -lR of a mount that stops at the directory views (ls -l of every
    folder above them), as run() gives it."""
    folders = [dirpath for dirpath, _, _ in walk_outside_views(mnt)]
    return run(["ls", "-l"] + folders, timeout=timeout)


def walk_outside_views(mnt):
    """os.walk of a mount that does not enter the directory views (the
    folders in runtime folders): listing those builds their packages."""
    for dirpath, dirnames, filenames in os.walk(mnt):
        if len(os.path.relpath(dirpath, mnt).split(os.sep)) == 2:
            dirnames.clear()
        yield dirpath, dirnames, filenames


def tree_of(root):
    """{relative path: (kind, mode bits, content or link target)} of a tree."""
    out = {}
    for rel, p, st in entries_below(root):
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", None, os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", None, None)
        else:
            with open(p, "rb") as f:
                out[rel] = ("file", stat.S_IMODE(st.st_mode) & 0o111, f.read())
    return out


def unzip_tree(zip_path, dest):
    """unzip of zip_path into the new folder dest, as tree_of."""
    dest.mkdir()
    r = run(["unzip", "-q", str(zip_path), "-d", str(dest)])
    assert r.returncode == 0, r.stderr
    return tree_of(dest)


def view(mount, platform, runtime, bench):
    """The directory view of a code package."""
    return mount.path(platform, runtime, bench)


def assert_view_equals_unzip(mount, tmp_path, platform, runtime, bench, suffix=".zip"):
    """cp -r of the package's directory view equals unzip of the package
    (names, kinds, execute bits, bytes, link targets); the view's modes and
    sizes are the zip's.  Returns the copy as tree_of."""
    v = view(mount, platform, runtime, bench)
    copy = tmp_path / f"copy-{platform}-{runtime}-{bench}"
    # cp -r, as a user would (no shutil: it stats and opens in its own way)
    r = run(["cp", "-r", str(v), str(copy)])
    assert r.returncode == 0, r.stderr
    expected = unzip_tree(mount.path(platform, runtime, bench + suffix),
                          tmp_path / f"unzip-{platform}-{runtime}-{bench}")
    got = tree_of(copy)
    assert sorted(got) == sorted(expected)
    for rel, want in expected.items():
        assert got[rel] == want, rel
    # modes as the zip has them (cp -r keeps them, minus the umask's bits)
    with zipfile.ZipFile(mount.path(platform, runtime, bench + suffix)) as z:
        for info in z.infolist():
            mode = info.external_attr >> 16
            st = os.lstat(os.path.join(v, info.filename.rstrip("/")))
            assert stat.S_IFMT(st.st_mode) == stat.S_IFMT(mode), info.filename
            if not stat.S_ISLNK(mode):
                assert stat.S_IMODE(st.st_mode) == stat.S_IMODE(mode) & 0o555, info.filename
            if stat.S_ISREG(mode):
                assert st.st_size == info.file_size, info.filename
    return got


def ancestors(path):
    parts = path.split("/")[:-1]
    return {"/".join(parts[:i + 1]) + "/" for i in range(len(parts))}


def check_entries(data, required, optional=(), allowed_empty_dirs=()):
    """Entry-by-entry comparison; returns a list of problems (empty = OK)."""
    problems = []
    zf = zip_of(data)
    infos = zf.infolist()
    all_names = [i.filename for i in infos]
    if len(all_names) != len(set(all_names)):
        problems.append(f"duplicate entries: {sorted(n for n in all_names if all_names.count(n) > 1)}")
    files = {n for n in all_names if not n.endswith("/")}
    dirs = {n for n in all_names if n.endswith("/")}
    missing = set(required) - files
    extra = files - set(required) - set(optional)
    if missing:
        problems.append(f"missing entries: {sorted(missing)}")
    if extra:
        problems.append(f"unexpected entries: {sorted(extra)}")
    need_dirs = set().union(*[ancestors(f) for f in files]) if files else set()
    if need_dirs - dirs:
        problems.append(f"missing directory entries: {sorted(need_dirs - dirs)}")
    stray = dirs - need_dirs - set(allowed_empty_dirs)
    if stray:
        problems.append(f"unexpected directory entries: {sorted(stray)}")
    for n in all_names:
        if n.startswith("/") or ".." in n.split("/") or n.startswith("./"):
            problems.append(f"bad entry path {n!r}")
    for i in infos:
        if i.date_time != (1980, 1, 1, 0, 0, 0):
            problems.append(f"{i.filename}: timestamp {i.date_time}, expected 1980-01-01 00:00:00")
        mode = i.external_attr >> 16
        kind, perm = mode & 0o170000, mode & 0o777
        if i.is_dir():
            if perm != 0o755 or kind not in (0, 0o040000):
                problems.append(f"{i.filename}: directory mode {oct(mode)}")
        elif perm not in (0o644, 0o755) or kind not in (0, 0o100000):
            problems.append(f"{i.filename}: file mode {oct(mode)} (symlink or odd permissions)")
    bad = zf.testzip()
    if bad:
        problems.append(f"corrupt member {bad}")
    return problems
