"""Compatibility details with SeBS's own packages: an empty requirements.txt
in python packages of benchmarks that have none, and config.json language
entries with variants."""

import difflib
import errno
import json

import pytest

from sebsfs_testlib import (BENCH_DIRS, DYNAMIC_HTML, SLEEP, edit_json, log_text, member, names,
                            open_errno, read, wait_for, xattr)

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


BUN_JS = b"exports.handler = async (event) => ({ result: event.sleep, runtime: 'bun' });\n"


def unified_diff(name, old, new):
    """A patch -p1 diff of one file, as `git diff` writes it."""
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        f"a/{name}", f"b/{name}"))


@pytest.fixture
def variants(suite):
    """010.sleep lists nodejs variants bun (overlay files), llrt (patch.diff)
    and deno; systems.json declares images for bun and llrt on aws only."""
    bench = suite / BENCH_DIRS[SLEEP]
    edit_json(bench / "config.json", lambda c: c.update(languages=[
        {"language": "nodejs", "variants": ["default", "bun", "llrt", "deno"]}, "java", "cpp"]))
    nodejs = bench / "nodejs"
    (nodejs / "bun").mkdir()
    (nodejs / "bun" / "function.js").write_bytes(BUN_JS)
    (nodejs / "llrt").mkdir()
    old = (nodejs / "function.js").read_text()
    (nodejs / "llrt" / "patch.diff").write_text(
        unified_diff("function.js", old, old.replace("return { result: sleep };",
                                                     "return { result: sleep, runtime: 'llrt' };")))
    edit_json(suite / "configs" / "systems.json",
              lambda s: s["aws"]["languages"]["nodejs"].update(variant_images=["bun", "llrt"]))
    return bench


def test_variants_are_served_where_systems_json_declares_images(sebsfs, variants):
    m = sebsfs()
    aws = set(p.name for p in m.path("aws").iterdir())
    for version in ("18", "20"):
        for variant in ("bun", "llrt"):
            assert f"nodejs-{version}-{variant}" in aws
            assert f"nodejs-{version}-{variant}-arm64" in aws
    assert not [n for n in aws if "deno" in n]
    assert not [p for p in m.path("local").iterdir() if "bun" in p.name or "llrt" in p.name]
    # only the benchmarks that list the variant; a code package (and its
    # view), no image (SeBS's image names have no variant)
    assert sorted(p.name for p in m.path("aws", "nodejs-20-bun").iterdir()) == \
        [SLEEP, f"{SLEEP}.zip", f"{SLEEP}.zip.log"]

    default_js = (variants / "nodejs" / "function.js").read_bytes()
    default = read(m.zip("aws", "nodejs-20", SLEEP))
    assert member(default, "function/function.js") == default_js
    assert not [n for n in names(default) if "bun" in n or "llrt" in n or "patch.diff" in n]

    bun = read(m.zip("aws", "nodejs-20-bun", SLEEP))
    assert member(bun, "function/function.js") == BUN_JS
    assert "step 2: variant bun: files of" in log_text(m, "aws", "nodejs-20-bun", SLEEP)

    llrt = read(m.zip("aws", "nodejs-20-llrt", SLEEP))
    assert member(llrt, "function/function.js") == default_js.replace(
        b"return { result: sleep };", b"return { result: sleep, runtime: 'llrt' };")
    assert "step 2: variant llrt: patch -p1" in log_text(m, "aws", "nodejs-20-llrt", SLEEP)
    assert set(names(llrt)) == set(names(default))

    line = (f"{variants}/config.json: variant nodejs/deno is not served: no platform of"
            " systems.json lists it in languages.<language>.variant_images")
    assert m.stderr().count(line) == 1


def test_variant_code_is_an_input(sebsfs, variants):
    m = sebsfs()
    z = m.zip("aws", "nodejs-20-bun", SLEEP)
    assert member(read(z), "function/function.js") == BUN_JS
    (variants / "nodejs" / "bun" / "function.js").write_bytes(b"exports.handler = () => 2;\n")
    assert member(read(z), "function/function.js") == b"exports.handler = () => 2;\n"


def test_a_patch_that_does_not_apply_fails_the_build(sebsfs, variants):
    (variants / "nodejs" / "llrt" / "patch.diff").write_text(
        unified_diff("function.js", "no such line\n", "other line\n"))
    m = sebsfs()
    assert open_errno(m.zip("aws", "nodejs-20-llrt", SLEEP)) == errno.EIO
    log = log_text(m, "aws", "nodejs-20-llrt", SLEEP)
    assert "error: patch exited with status 1" in log
    assert not [n for n in (variants / "nodejs").rglob("*.rej")]


def test_variant_without_its_folder_fails_the_build(sebsfs, variants):
    (variants / "nodejs" / "bun" / "function.js").unlink()
    (variants / "nodejs" / "bun").rmdir()
    m = sebsfs()
    assert open_errno(m.zip("aws", "nodejs-20-bun", SLEEP)) == errno.EIO
    assert "variant bun: " in log_text(m, "aws", "nodejs-20-bun", SLEEP)
    assert "is not a folder" in log_text(m, "aws", "nodejs-20-bun", SLEEP)


def test_benchmark_without_variants_is_not_in_variant_folders(sebsfs, variants):
    m = sebsfs()
    assert m.path("aws", "nodejs-20-bun", f"{SLEEP}.zip").exists()
    assert not m.path("aws", "nodejs-20-bun", f"{DYNAMIC_HTML}.zip").exists()
    assert m.path("aws", "nodejs-20", f"{DYNAMIC_HTML}.zip").exists()


def test_variant_packages_fill_a_sebs_cache(sebsfs, variants, suite, tmp_path):
    """A variant folder's packages go under SeBS's language-variant key, with
    SeBS's hash of that variant (its patch.diff or overlay files count)."""
    import sebs_cache_checker as checker
    from test_sebs_cache import fill
    m = sebsfs()
    default_hash = xattr(m.zip("aws", "nodejs-20", SLEEP), "user.sebs.sebs_hash")
    for variant in ("bun", "llrt"):
        assert xattr(m.zip("aws", f"nodejs-20-{variant}", SLEEP),
                     "user.sebs.sebs_hash") != default_hash
    cache = tmp_path / "cache"
    runtimes = [f"nodejs-20{v}{a}" for v in ("", "-bun", "-llrt") for a in ("", "-arm64")]
    fill(m, cache, "--platform", "aws", "--benchmark", SLEEP,
         *[arg for r in runtimes for arg in ("--runtime", r)])
    for variant in ("default", "bun", "llrt"):
        for arch in ("x64", "arm64"):
            v = checker.query(str(cache), str(suite), "aws", SLEEP, "nodejs", "20", arch,
                              language_variant=variant)
            assert v.current, f"{variant}/{arch}: {v}"
    entry = checker.cached_entry(str(cache), "aws", SLEEP,
                                 ["nodejs", "code_package", "bun", "20", "x64"])
    data = (cache / entry["location"]).read_bytes()
    assert member(data, "function/function.js") == BUN_JS
