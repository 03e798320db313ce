"""Compatibility details with SeBS's own packages: an empty requirements.txt
in python packages of benchmarks that have none, and config.json language
entries with variants."""

import json

import pytest

from sebsfs_testlib import BENCH_DIRS, SLEEP, log_text, member, names, read

# where each layout puts the requirements file (test_layouts.py)
REQUIREMENTS = {"aws": "requirements.txt", "azure": "requirements.txt",
                "gcp": "function/requirements.txt", "local": "requirements.txt"}


@pytest.fixture
def python_sleep(suite):
    """010.sleep with a python version that has no requirements.txt, as in SeBS."""
    bench = suite / BENCH_DIRS[SLEEP]
    cfg = json.loads((bench / "config.json").read_text())
    cfg["languages"].append("python")
    (bench / "config.json").write_text(json.dumps(cfg))
    (bench / "python").mkdir()
    (bench / "python" / "function.py").write_text(
        "import time\n\ndef handler(event):\n    time.sleep(event.get('sleep', 1))\n"
        "    return {'result': event.get('sleep', 1)}\n")
    return bench


@pytest.mark.parametrize("platform", ["aws", "azure", "gcp", "local"])
def test_python_package_without_requirements_has_an_empty_one(sebsfs, python_sleep, platform):
    m = sebsfs()
    data = read(m.zip(platform, "python-3.11", SLEEP))
    assert REQUIREMENTS[platform] in names(data)
    assert member(data, REQUIREMENTS[platform]) == b""
    log = log_text(m, platform, "python-3.11", SLEEP)
    assert "step 5: no requirements.txt: an empty one, as SeBS's packages have" in log
    assert "step 6: requirements.txt is empty and there is no package.sh, nothing to install" in log
    assert not [n for n in names(data) if n.startswith(".python_packages/lib/site-packages/")
                and not n.endswith("/")]


def test_language_variants_serve_the_default_variant(sebsfs, suite):
    """{"language": ..., "variants": [...]} entries are accepted; the default
    variant is served exactly as for a plain "python" entry, a variant's
    folder (patch.diff or overlay files) never leaks into it, and one line
    says that the named variants are not served."""
    bench = suite / BENCH_DIRS[SLEEP]
    cfg = json.loads((bench / "config.json").read_text())
    cfg["languages"] = [{"language": "nodejs", "variants": ["default", "bun", "llrt"]},
                        "java", "cpp"]
    (bench / "config.json").write_text(json.dumps(cfg))
    nodejs = bench / "nodejs"
    (nodejs / "bun").mkdir()
    (nodejs / "bun" / "function.js").write_text("exports.handler = () => 'bun';\n")
    (nodejs / "llrt").mkdir()
    (nodejs / "llrt" / "patch.diff").write_text(
        "--- a/function.js\n+++ b/function.js\n@@ -1 +1 @@\n-x\n+y\n")
    m = sebsfs()
    assert sorted(p.name for p in m.path("aws", "nodejs-20").iterdir()
                  if p.name.startswith(SLEEP)) == [f"{SLEEP}.{k}" for k in
                                                   ("image", "image.log", "zip", "zip.log")]
    assert not [p for p in m.path("aws").iterdir() if "bun" in p.name or "llrt" in p.name]
    data = read(m.zip("aws", "nodejs-20", SLEEP))
    assert member(data, "function/function.js") == (nodejs / "function.js").read_bytes()
    assert not [n for n in names(data) if "bun" in n or "llrt" in n or "patch.diff" in n]
    line = (f"{bench}/config.json: languages[0] (nodejs): variants bun, llrt not served"
            " (sebsfs serves the default variant only)")
    assert line in m.stderr()
    assert m.stderr().count(line) == 1
