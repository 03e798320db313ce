"""Input watches (-o input_watch, src/builder/inwatch.h): an open skips the walk
of a package's inputs when inotify saw no change since the last walk, and
every kind of change is still seen at the next open.

Each change test builds the package, checks it once more (so the skip, not a
first walk, answers the next open), changes one input, and reads again: the
package must be rebuilt from the new input.  builder=none: no dependencies
are installed, the package is the benchmark's code as laid out for aws.
"""

import json
import os
import re
import shutil

import pytest

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, builds, edit_json, member, names,
                            one_line_error, read, run_sebsfs, state, zip_of)

PLATFORM, RUNTIME = "aws", "python-3.11"


@pytest.fixture
def bench(suite):
    return suite / BENCH_DIRS[COMPRESSION]


def watched(sebsfs, *options):
    return sebsfs(options=("builder=none",) + options)


def build_and_settle(m):
    """Builds the package, then opens it again: the second open is answered by
    the walk the build recorded (no change since)."""
    z = m.zip(PLATFORM, RUNTIME, COMPRESSION)
    first = read(z)
    assert builds(z) == 1
    assert read(z) == first and builds(z) == 1 and state(z) == "fresh"
    return z, first


def rebuilt(z, n=2):
    data = read(z)
    assert builds(z) == n, f"{z}: the change was not seen (builds {builds(z)}, expected {n})"
    assert state(z) == "fresh"
    return data


def mode_of(data, name):
    return zip_of(data).getinfo(name).external_attr >> 16 & 0o777


def same_size_edit(path):
    """Changes one byte, keeping the size and restoring atime and mtime (touch -r)."""
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[0] = ord("#") if data[0] != ord("#") else ord("%")
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns


def test_same_size_edit_with_restored_mtime(sebsfs, bench):
    z, old = build_and_settle(watched(sebsfs))
    same_size_edit(bench / "python" / "function.py")
    new = rebuilt(z)
    assert member(new, "function/function.py") == (bench / "python" / "function.py").read_bytes()
    assert member(new, "function/function.py") != member(old, "function/function.py")


def test_new_file(sebsfs, bench):
    z, _ = build_and_settle(watched(sebsfs))
    (bench / "python" / "added.py").write_text("ADDED = 1\n")
    assert member(rebuilt(z), "function/added.py") == b"ADDED = 1\n"


def test_new_file_in_new_folder(sebsfs, bench):
    z, _ = build_and_settle(watched(sebsfs))
    (bench / "resources" / "more" / "deeper").mkdir(parents=True)
    (bench / "resources" / "more" / "deeper" / "x.txt").write_text("deep\n")
    assert member(rebuilt(z), "function/resources/more/deeper/x.txt") == b"deep\n"


def test_removed_file(sebsfs, bench):
    z, old = build_and_settle(watched(sebsfs))
    assert "function/resources/lorem.txt" in names(old)
    (bench / "resources" / "lorem.txt").unlink()
    assert "function/resources/lorem.txt" not in names(rebuilt(z))


def test_rename_inside_folder(sebsfs, bench):
    z, _ = build_and_settle(watched(sebsfs))
    os.rename(bench / "resources" / "lorem.txt", bench / "resources" / "ipsum.txt")
    new = names(rebuilt(z))
    assert "function/resources/ipsum.txt" in new and "function/resources/lorem.txt" not in new


def test_rename_of_subfolder(sebsfs, bench):
    z, _ = build_and_settle(watched(sebsfs))
    os.rename(bench / "resources" / "texts", bench / "resources" / "tables")
    new = names(rebuilt(z))
    assert "function/resources/tables/numbers.csv" in new
    assert "function/resources/texts/numbers.csv" not in new


def test_edit_in_renamed_subfolder(sebsfs, bench):
    """The watch of a moved folder stays on it: an edit there after a rename
    (and the rebuild that rename caused) is still seen."""
    z, _ = build_and_settle(watched(sebsfs))
    os.rename(bench / "resources" / "texts", bench / "resources" / "tables")
    rebuilt(z)
    assert read(z) and builds(z) == 2
    with open(bench / "resources" / "tables" / "numbers.csv", "a") as f:
        f.write("7,49,343\n")
    assert member(rebuilt(z, 3), "function/resources/tables/numbers.csv").endswith(b"7,49,343\n")


def test_folder_replaced_by_a_copy(sebsfs, bench):
    """resources/ swapped for an edited copy (rsync --delay-updates, a
    checkout): the old folder's watch sees it moved away."""
    z, _ = build_and_settle(watched(sebsfs))
    shutil.copytree(bench / "resources", bench / "resources.new")
    (bench / "resources.new" / "lorem.txt").write_text("swapped\n")
    os.rename(bench / "resources", bench / "resources.old")
    os.rename(bench / "resources.new", bench / "resources")
    shutil.rmtree(bench / "resources.old")
    assert member(rebuilt(z), "function/resources/lorem.txt") == b"swapped\n"


def test_benchmark_folder_replaced_through_an_ancestor(sebsfs, suite):
    """The group folder is swapped for a copy with an edit: no watch below it
    sees anything (the watched folders moved away untouched), the stat of the
    benchmark folder's path does."""
    z, _ = build_and_settle(watched(sebsfs))
    group = suite / "benchmarks" / "300.utilities"
    copy = suite / "benchmarks" / "300.utilities.new"
    shutil.copytree(group, copy, symlinks=True)
    with open(copy / "311.compression" / "python" / "function.py", "a") as f:
        f.write("# swapped-group\n")
    os.rename(group, suite / "old-group")  # kept: its watches see no event
    os.rename(copy, group)
    assert b"# swapped-group" in member(rebuilt(z), "function/function.py")


@pytest.fixture
def linked(bench):
    """Links from python/ into nodejs/, a folder the python walk skips (another
    language's): only the links make nodejs/ files inputs of the python package.
      python/linked.py   -> ../nodejs/data.py      (a file)
      python/linkdir     -> ../nodejs/dir          (a folder, shipped by python/init.sh)
      python/nested.py   -> ../nodejs/cur/pick.py  with nodejs/cur -> a (a link on the way)
    """
    nodejs = bench / "nodejs"
    for d in ("dir", "a", "b"):
        (nodejs / d).mkdir(parents=True)
    (nodejs / "data.py").write_text("DATA = 1\n")
    (nodejs / "dir" / "inside.txt").write_text("inside\n")
    (nodejs / "a" / "pick.py").write_text("PICK = 'a'\n")
    (nodejs / "b" / "pick.py").write_text("PICK = 'b'\n")
    os.symlink("a", nodejs / "cur")
    os.symlink("../nodejs/data.py", bench / "python" / "linked.py")
    os.symlink("../nodejs/dir", bench / "python" / "linkdir")
    os.symlink("../nodejs/cur/pick.py", bench / "python" / "nested.py")
    (bench / "python" / "init.sh").write_text(
        'cp -rL "$(dirname "${BASH_SOURCE[0]}")/linkdir" "$1/linkdir"\n')
    return nodejs


def test_edit_through_symlinked_file(sebsfs, linked):
    z, old = build_and_settle(watched(sebsfs))
    assert member(old, "function/linked.py") == b"DATA = 1\n"
    (linked / "data.py").write_text("DATA = 22\n")
    assert member(rebuilt(z), "function/linked.py") == b"DATA = 22\n"


def test_same_size_edit_through_symlinked_file(sebsfs, linked):
    z, _ = build_and_settle(watched(sebsfs))
    same_size_edit(linked / "data.py")
    assert member(rebuilt(z), "function/linked.py") == (linked / "data.py").read_bytes()


def test_new_file_in_symlinked_folder(sebsfs, linked):
    z, old = build_and_settle(watched(sebsfs))
    assert member(old, "function/linkdir/inside.txt") == b"inside\n"
    (linked / "dir" / "new.txt").write_text("new inside\n")
    assert member(rebuilt(z), "function/linkdir/new.txt") == b"new inside\n"


def test_link_on_the_way_retargeted(sebsfs, linked):
    z, old = build_and_settle(watched(sebsfs))
    assert member(old, "function/nested.py") == b"PICK = 'a'\n"
    os.symlink("b", linked / "cur.tmp")
    os.rename(linked / "cur.tmp", linked / "cur")  # ln -sfn, atomically
    assert member(rebuilt(z), "function/nested.py") == b"PICK = 'b'\n"


def test_symlink_retargeted(sebsfs, bench, linked):
    z, _ = build_and_settle(watched(sebsfs))
    link = bench / "python" / "linked.py"
    link.unlink()
    os.symlink("../nodejs/a/pick.py", link)
    assert member(rebuilt(z), "function/linked.py") == b"PICK = 'a'\n"


def test_edit_through_another_hard_link(sebsfs, bench, tmp_path):
    """A hard link outside the tree: a write through it notifies the outside
    folder only, so the file itself is watched."""
    other = tmp_path / "lorem-elsewhere.txt"
    os.link(bench / "resources" / "lorem.txt", other)
    z, _ = build_and_settle(watched(sebsfs))
    same_size_edit(other)
    assert member(rebuilt(z), "function/resources/lorem.txt") == other.read_bytes()


def test_chmod_exec_bit(sebsfs, bench):
    """The x bit reaches the package (0755 vs 0644), so it is an input."""
    z, old = build_and_settle(watched(sebsfs))
    assert mode_of(old, "function/resources/lorem.txt") == 0o644
    os.chmod(bench / "resources" / "lorem.txt", 0o755)
    new = rebuilt(z)
    assert mode_of(new, "function/resources/lorem.txt") == 0o755
    os.chmod(bench / "resources" / "lorem.txt", 0o644)
    assert mode_of(rebuilt(z, 3), "function/resources/lorem.txt") == 0o644


def test_chmod_exec_bit_without_watch(sebsfs, bench):
    """The same without the watch: the hash, not only the watch, sees it."""
    z, old = build_and_settle(watched(sebsfs, "input_watch=off"))
    os.chmod(bench / "resources" / "lorem.txt", 0o700)
    assert mode_of(rebuilt(z), "function/resources/lorem.txt") == 0o755


def add_marker_to_aws_python(systems):
    systems["aws"]["languages"]["python"]["x-watch-marker"] = 1


@pytest.mark.parametrize("how", ["in place", "replaced by rename"])
def test_systems_json_edit_in_platform_section(sebsfs, suite, how):
    z, _ = build_and_settle(watched(sebsfs))
    path = suite / "configs" / "systems.json"
    if how == "in place":
        edit_json(path, add_marker_to_aws_python)
    else:
        doc = json.loads(path.read_text())
        add_marker_to_aws_python(doc)
        tmp = path.with_name("systems.json.tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        os.rename(tmp, path)
    rebuilt(z)


def test_systems_json_other_platform_does_not_rebuild(sebsfs, suite):
    z, old = build_and_settle(watched(sebsfs))
    edit_json(suite / "configs" / "systems.json",
              lambda s: s["gcp"]["languages"]["python"].update({"x-other": 1}))
    assert read(z) == old and builds(z) == 1


def test_change_while_the_package_is_read(sebsfs, bench):
    z, old = build_and_settle(watched(sebsfs))
    with open(z, "rb") as held:
        head = held.read(100)
        with open(bench / "python" / "function.py", "a") as f:
            f.write("# while-read\n")
        assert head + held.read() == old
    assert b"# while-read" in member(rebuilt(z), "function/function.py")


def test_many_quick_edits_in_a_row(sebsfs, bench):
    """Edit, read, edit, read, ... with no pause: every read has the edit
    before it (the same file, same size, within one timestamp tick)."""
    z, _ = build_and_settle(watched(sebsfs))
    path = bench / "resources" / "lorem.txt"
    for i in range(30):
        path.write_text(f"edit {i:04d}\n")
        assert member(read(z), "function/resources/lorem.txt") == f"edit {i:04d}\n".encode(), i
    assert builds(z) == 31


# ---- the walk is skipped -----------------------------------------------------

WALKED = re.compile(r"aws/python-3\.11/311\.compression\.zip: inputs walked \((\d+) files\)")


def walks(m):
    return [int(n) for n in WALKED.findall(m.stderr())]


@pytest.fixture
def many_inputs(bench):
    """3,000 more input files in 30 folders."""
    for d in range(30):
        folder = bench / "resources" / "many" / f"d{d:02d}"
        folder.mkdir(parents=True)
        for i in range(100):
            (folder / f"f{i:03d}.txt").write_text(f"{d} {i}\n")
    return bench / "resources" / "many"


def test_opens_of_an_unchanged_package_do_not_walk(sebsfs, many_inputs):
    m = watched(sebsfs, "debug")
    z, data = build_and_settle(m)
    assert len(names(data)) > 3000
    before = walks(m)
    assert before and max(before) > 3000, m.stderr()[-2000:]
    for _ in range(50):
        with open(z, "rb") as f:
            f.read(4096)
    assert walks(m) == before, "an open walked the inputs although nothing changed"
    # and the next change is still seen, with one walk
    (many_inputs / "d17" / "f042.txt").write_text("changed\n")
    assert member(rebuilt(m.zip(PLATFORM, RUNTIME, COMPRESSION)),
                  "function/resources/many/d17/f042.txt") == b"changed\n"
    assert len(walks(m)) > len(before)


def test_without_watch_every_open_walks(sebsfs, many_inputs):
    m = watched(sebsfs, "debug", "input_watch=off")
    z, _ = build_and_settle(m)
    before = len(walks(m))
    for _ in range(10):
        with open(z, "rb") as f:
            f.read(4096)
    assert len(walks(m)) >= before + 10
    assert "input_watch=off" in m.stderr()


@pytest.mark.parametrize("value", ["maybe", "", "On"])
def test_input_watch_option_values(tmp_path, suite, value):
    r = run_sebsfs(tmp_path, "-f", "-o", f"cache={tmp_path / 'cache'},input_watch={value}",
                   suite, "@MNT@")
    one_line_error(r, f"input_watch={value}:", "expected on or off")
