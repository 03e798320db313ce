"""Zip contents of every platform layout, entry by entry (SEBS.md section 5)."""

import json
import subprocess

import pytest

from sebsfs_testlib import (AZURE_FUNCTION_JSON, AZURE_HOST_JSON, BENCH_DIRS, COMPRESSION,
                            DYNAMIC_HTML, PLATFORMS, check_entries, expected_110, member, names,
                            read)

CASES = [(p, lang, ver) for p in PLATFORMS
         for lang, ver in (("python", "3.11"), ("python", "3.10"), ("nodejs", "20"))]


def unzip_names(path):
    r = subprocess.run(["unzip", "-Z1", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.parametrize("platform,language,version", CASES)
def test_dynamic_html_layout(mount, suite, platform, language, version):
    z = mount.zip(platform, f"{language}-{version}", DYNAMIC_HTML)
    data = read(z)
    required, optional = expected_110(suite, platform, language, version)
    problems = check_entries(data, required, optional)
    assert not problems, "\n".join(problems)
    assert unzip_names(z) == names(data)

    bench = suite / BENCH_DIRS[DYNAMIC_HTML] / language
    wrappers = suite / "benchmarks" / "wrappers" / platform / language
    code = "function.py" if language == "python" else "function.js"
    handler = "handler.py" if language == "python" else "handler.js"
    if platform in ("aws", "local"):
        assert member(data, "function/" + code) == (bench / code).read_bytes()
        if platform == "aws":
            assert member(data, handler) == (wrappers / handler).read_bytes()
        assert member(data, "function/templates/template.html") == \
            (bench / "templates" / "template.html").read_bytes()
    elif platform == "gcp":
        main = "main.py" if language == "python" else "index.js"
        assert member(data, main) == (wrappers / handler).read_bytes()
        assert member(data, "function/" + code) == (bench / code).read_bytes()
    elif platform == "azure":
        fj = dict(AZURE_FUNCTION_JSON, scriptFile=handler)
        assert json.loads(member(data, "handler/function.json")) == fj
        assert json.loads(member(data, "host.json")) == AZURE_HOST_JSON
        assert member(data, "handler/" + handler) == (wrappers / handler).read_bytes()
        assert member(data, "handler/" + code) == (bench / code).read_bytes()
    else:
        entry = "__main__.py" if language == "python" else "index.js"
        assert [n for n in names(data) if not n.endswith("/")] == [entry]
        assert member(data, entry) == (wrappers / entry).read_bytes()
    if language == "python" and platform != "openwhisk":
        marker = member(data, ".python_packages/lib/site-packages/.sebs-packaged").decode()
        assert f"platform={platform.upper()}" in marker
        assert f"python={version}" in marker


@pytest.mark.parametrize("platform", PLATFORMS)
def test_compression_layout(mount, suite, platform):
    data = read(mount.zip(platform, "python-3.11", COMPRESSION))
    n = [x for x in names(data) if not x.endswith("/")]
    res = suite / BENCH_DIRS[COMPRESSION] / "resources"
    if platform == "openwhisk":
        assert n == ["__main__.py"]
        return
    prefix = "handler/" if platform == "azure" else "function/"
    assert member(data, prefix + "resources/lorem.txt") == (res / "lorem.txt").read_bytes()
    assert member(data, prefix + "resources/texts/numbers.csv") == \
        (res / "texts" / "numbers.csv").read_bytes()
    assert prefix + "function.py" in n
    rq = "requirements.txt" if platform != "gcp" else "function/requirements.txt"
    assert rq in n
    files = json.load(open(suite / "configs" / "systems.json"))[platform]["languages"]["python"]["deployment"]["files"]
    for f in files:
        if f == "handler.py":
            want = {"aws": "handler.py", "gcp": "main.py", "azure": "handler/handler.py"}[platform]
        else:
            want = prefix + f
        assert want in n, (want, n)
    problems = check_entries(data, set(n), (), allowed_empty_dirs={
        ".python_packages/", ".python_packages/lib/", ".python_packages/lib/site-packages/"})
    assert not problems, "\n".join(problems)
