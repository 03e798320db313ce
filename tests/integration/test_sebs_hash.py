"""user.sebs.sebs_hash: SeBS's own code-package hash, read through a mount.

The expected values come from a Python re-implementation of SeBS's
Benchmark.hash_directory (sebs/benchmark.py) below, run on the same tree:
on the same machine glob and os.walk list entries in the same readdir
order as sebsfs does, so folders with several matches of one pattern (the
example suite's requirements.txt and requirements.txt.3.10, init.sh and
package.sh) are compared in that order.  Reading the xattr never builds.
"""

import errno
import glob
import hashlib
import os
import re

import pytest

from sebsfs_testlib import BENCH_DIRS, DYNAMIC_HTML, SLEEP, append, builds, state, xattr

GRAPH_BFS = "benchmarks/500.scientific/503.graph-bfs"
NAME = "user.sebs.sebs_hash"

SOURCES = {"python": ["*.py", "requirements.txt*"], "nodejs": ["*.js", "package.json"],
           "java": ["*.java", "pom.xml"], "cpp": ["*.cpp", "*.hpp", "dependencies.json"]}
WRAPPERS = {"python": ["*.py"], "nodejs": ["*.js"], "java": ["src"], "cpp": ["*.cpp", "*.hpp"]}


def sebs_hash(root, bench_dir, platform, language):
    """MD5 of the files SeBS hashes, in SeBS's order (default variant)."""
    md5 = hashlib.md5()

    def add(path):
        with open(path, "rb") as f:
            md5.update(f.read())

    lang_dir = os.path.join(bench_dir, language)
    for pattern in SOURCES[language] + ["*.sh", "*.json"]:
        for path in glob.glob(os.path.join(lang_dir, pattern)):
            add(path)
    wrapper_dir = os.path.join(root, "benchmarks", "wrappers", platform, language)
    for pattern in WRAPPERS[language]:
        for path in glob.glob(os.path.join(wrapper_dir, pattern)):
            if not os.path.isdir(path):
                add(path)
                continue
            for folder, _, files in os.walk(path):
                for name in files:
                    add(os.path.join(folder, name))
    return md5.hexdigest()


PACKAGES = [
    # platform, runtime, file, benchmark folder, language
    ("aws", "python-3.11", f"{DYNAMIC_HTML}.zip", BENCH_DIRS[DYNAMIC_HTML], "python"),
    ("gcp", "python-3.10", f"{DYNAMIC_HTML}.image", BENCH_DIRS[DYNAMIC_HTML], "python"),
    ("aws", "nodejs-20", f"{DYNAMIC_HTML}.zip", BENCH_DIRS[DYNAMIC_HTML], "nodejs"),
    ("azure", "nodejs-20", f"{DYNAMIC_HTML}.zip", BENCH_DIRS[DYNAMIC_HTML], "nodejs"),
    ("aws", "java-17", f"{SLEEP}.jar", BENCH_DIRS[SLEEP], "java"),
    ("gcp", "java-17", f"{DYNAMIC_HTML}.zip", BENCH_DIRS[DYNAMIC_HTML], "java"),
    ("openwhisk", "java-8", f"{SLEEP}.image", BENCH_DIRS[SLEEP], "java"),
    ("aws", "cpp-all", "503.graph-bfs.zip", GRAPH_BFS, "cpp"),
    ("aws", "cpp-all", f"{SLEEP}.image", BENCH_DIRS[SLEEP], "cpp"),
]


@pytest.mark.parametrize("platform,runtime,name,bench,language", PACKAGES,
                         ids=[f"{p[0]}-{p[1]}-{p[2]}" for p in PACKAGES])
def test_equals_sebs_algorithm_without_building(mount, suite, platform, runtime, name, bench,
                                                language):
    pkg = mount.path(platform, runtime, name)
    value = xattr(pkg, NAME)
    assert value is not None and re.fullmatch(r"[0-9a-f]{32}", value), value
    assert value == sebs_hash(suite, suite / bench, platform, language)
    assert NAME in os.listxattr(pkg)
    assert builds(pkg) == 0 and state(pkg) == "absent"


def test_follows_edits_of_hashed_files_only(mount, suite):
    pkg = mount.path("aws", "python-3.11", f"{DYNAMIC_HTML}.zip")
    bench = suite / BENCH_DIRS[DYNAMIC_HTML]

    def expected():
        return sebs_hash(suite, bench, "aws", "python")

    before = xattr(pkg, NAME)
    assert before == expected()

    # not hashed by SeBS: a template, the benchmark's input.py, a hidden file
    append(bench / "python" / "templates" / "template.html", "<!-- not hashed -->\n")
    append(bench / "input.py", "# not hashed\n")
    (bench / "python" / ".hidden.py").write_text("# glob skips hidden files\n")
    assert xattr(pkg, NAME) == before

    append(bench / "python" / "function.py", "# hashed\n")
    after_code = xattr(pkg, NAME)
    assert after_code != before and after_code == expected()

    append(bench / "python" / "requirements.txt.3.10", "# hashed too\n")
    after_req = xattr(pkg, NAME)
    assert after_req not in (before, after_code) and after_req == expected()

    append(suite / "benchmarks" / "wrappers" / "aws" / "python" / "handler.py", "# wrapper\n")
    after_wrapper = xattr(pkg, NAME)
    assert after_wrapper != after_req and after_wrapper == expected()

    # another platform's wrapper is not part of this package's hash
    append(suite / "benchmarks" / "wrappers" / "gcp" / "python" / "handler.py", "# gcp\n")
    assert xattr(pkg, NAME) == after_wrapper
    assert builds(pkg) == 0


def test_java_wrapper_folder_is_walked(mount, suite):
    pkg = mount.path("aws", "java-17", f"{SLEEP}.jar")
    before = xattr(pkg, NAME)
    deep = suite / "benchmarks" / "wrappers" / "aws" / "java" / "src" / "main" / "extra"
    deep.mkdir(parents=True)
    (deep / ".Hidden.java").write_text("// os.walk does not skip hidden files\n")
    after = xattr(pkg, NAME)
    assert after != before
    assert after == sebs_hash(suite, suite / BENCH_DIRS[SLEEP], "aws", "java")
    assert builds(pkg) == 0


def test_dangling_link_is_an_error_not_a_value(mount, suite):
    pkg = mount.path("aws", "nodejs-20", f"{DYNAMIC_HTML}.zip")
    assert xattr(pkg, NAME) is not None
    link = suite / BENCH_DIRS[DYNAMIC_HTML] / "nodejs" / "broken.js"
    link.symlink_to("nowhere.js")
    with pytest.raises(OSError) as e:
        os.getxattr(pkg, NAME)
    assert e.value.errno == errno.EIO
    assert NAME not in os.listxattr(pkg)
    assert state(pkg) == "absent"
    link.unlink()
    assert xattr(pkg, NAME) == sebs_hash(suite, suite / BENCH_DIRS[DYNAMIC_HTML], "aws", "nodejs")
    assert "broken.js" in mount.stderr()
