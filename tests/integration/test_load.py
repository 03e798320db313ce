"""Load: concurrent readers while packages are evicted under them.

test_readers_and_evictions (issue 7, items 2 and 3):

20 reader threads read 10 packages over and over while 2 threads unlink
(evict) them, for LOAD_SECONDS.  Every read is checked: it must return the
complete package, byte-identical to the reference read before the load
started (builds are reproducible), never an empty file, never EIO, never a
zip that does not open; and no reader may hang (each read has a deadline,
and all threads must have finished shortly after the load ends).  Before the
fix this deadlocked the mount (a daemon thread stuck invalidating pages) or
served empty reads.

test_many_readers_evictions_xattrs (issue 8, "Load"): 64 reader processes,
evictor and xattr-reader processes over 16 packages for 20 rounds, with the
builds counted exactly and the daemon's descriptors and memory measured; see
its comment below.
"""

import errno
import hashlib
import multiprocessing
import os
import queue as queue_mod
import random
import threading
import time

import pytest

from sebsfs_testlib import (BENCH_DIRS, COMPRESSION, DYNAMIC_HTML, builds, member, read,
                            sanitized_build, sha256, state, zip_of)

LOAD_SECONDS = float(os.environ.get("SEBSFS_LOAD_SECONDS", "20"))
READERS = 20
EVICTORS = 2
READ_DEADLINE = 120.0  # one read; a build under load takes well under a second


def packages(m):
    out = []
    for platform in ("aws", "azure", "gcp", "local", "openwhisk"):
        for bench in (DYNAMIC_HTML, COMPRESSION):
            out.append(m.zip(platform, "python-3.11", bench))
    return out


def test_readers_and_evictions(sebsfs):
    # builder=none: builds are quick, so the evictions force many rebuilds
    m = sebsfs(options=("builder=none",))
    pkgs = packages(m)
    assert len(pkgs) == 10
    reference = {p: sha256(read(p)) for p in pkgs}

    stop = threading.Event()
    lock = threading.Lock()
    problems = []
    counts = {"reads": 0, "evictions": 0, "rebuilds_seen": 0}
    last_progress = {}

    def problem(text):
        with lock:
            if len(problems) < 50:
                problems.append(text)

    def reader(i):
        rnd = random.Random(i)
        while not stop.is_set():
            p = rnd.choice(pkgs)
            last_progress[i] = time.monotonic()
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError as e:
                problem(f"reader {i}: {p.name}: {errno.errorcode.get(e.errno, e.errno)} ({e})")
                continue
            if not data:
                problem(f"reader {i}: {p.parent.parent.name}/{p.name}: empty read")
                continue
            if sha256(data) != reference[p]:
                try:
                    zip_of(data).testzip()
                    what = "a different (valid) zip"
                except Exception as e:  # noqa: BLE001 - any failure is the finding
                    what = f"a broken zip ({e})"
                problem(f"reader {i}: {p.parent.parent.name}/{p.name}: {len(data)} bytes, "
                        f"{what}, expected sha256 {reference[p][:12]}")
                continue
            with lock:
                counts["reads"] += 1

    def evictor(i):
        rnd = random.Random(1000 + i)
        while not stop.is_set():
            p = rnd.choice(pkgs)
            try:
                os.unlink(p)
                with lock:
                    counts["evictions"] += 1
            except OSError as e:
                problem(f"evictor {i}: unlink {p.name}: {e}")
            time.sleep(rnd.uniform(0.0, 0.02))

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(READERS)]
    threads += [threading.Thread(target=evictor, args=(i,), daemon=True) for i in range(EVICTORS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + LOAD_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = time.monotonic()
        stuck = [i for i, t0 in list(last_progress.items()) if now - t0 > READ_DEADLINE]
        if stuck:
            break
    stop.set()
    end = time.monotonic() + READ_DEADLINE
    for t in threads:
        t.join(max(0.1, end - time.monotonic()))
    alive = [t for t in threads if t.is_alive()]
    assert not alive, (f"{len(alive)} threads still blocked {READ_DEADLINE:.0f} s after the load "
                       f"ended (a hung reader or a deadlocked mount); problems: {problems}")
    assert not problems, f"{len(problems)} bad operations, e.g.:\n" + "\n".join(problems[:20])
    print(f"load: {counts['reads']} good reads, {counts['evictions']} evictions in "
          f"{LOAD_SECONDS:.0f} s")
    assert counts["reads"] > READERS, "the readers made no progress"
    assert counts["evictions"] > 0
    # the mount still answers and serves the packages afterwards
    for p in pkgs:
        assert sha256(read(p)) == reference[p]


# ---------------------------------------------------------------------------
# 64 reader processes over 16 packages, with evictions and xattr readers
# (issue 8, "Load", first bullet).
#
# Every round has two phases, separated by barriers, so that the number of
# builds each package must have had is known exactly from what the evictors
# did:
#   phase 1: HOLDERS readers first open a package of this round's eviction
#            set E (and read its user.sebs.sha256 through that descriptor);
#            then, all at once, the evictors unlink every package of E
#            several times each while the readers read the packages not in
#            E; then the holders read their (meanwhile evicted) package to
#            the end.
#   phase 2: the readers read all 16 packages (the evicted ones, and in
#            round 1 the never-built ones, are opened by 32 processes at once
#            and must be built once).
# In both phases each package is read by 32 of the 64 readers (see share),
# each reader in its own random order.
# Two xattr-reader processes list and read every package's attributes all
# the time.  A package that a phase reads while it has no good package
# (evicted, or never built) must be built exactly once in that phase; a
# package that has one must not be built at all: so after every round
# user.sebs.builds equals what the test counted.  Evictions of a package
# that has no good package (the same one unlinked again) change nothing.
#
# Every read is checked: its bytes are as many as fstat says and not zero,
# they hash to the user.sebs.sha256 read through the same descriptor, and to
# the one digest every read of that package has had in the whole test (the
# builds are byte-reproducible, so a rebuild after an eviction gives the same
# zip).  The daemon's open descriptors and resident memory are sampled after
# every round, once it is idle; see test_many_readers_evictions_xattrs for
# the bounds.

LOAD_PLATFORMS = ("aws", "azure", "gcp", "local")
LOAD_RUNTIMES = ("python-3.10", "python-3.11")
LOAD_BENCHES = (DYNAMIC_HTML, COMPRESSION)
ROUNDS = int(os.environ.get("SEBSFS_LOAD_ROUNDS", "20"))
PROC_READERS = 64
PROC_EVICTORS = 2
XATTR_READERS = 2
EVICT_PER_ROUND = 3       # packages in each round's eviction set
UNLINKS_PER_EVICTOR = 3   # each evictor unlinks each package of the set this often
HOLDERS = 8               # readers that hold a package of the set open across its eviction
BARRIER_TIMEOUT = 240.0   # a phase that takes longer is a hang
WARM_ROUNDS = 3           # rounds after which fds and RSS must stay flat
RSS_GROWTH_LIMIT_KIB = 1024
STATES = {"absent", "fresh", "stale", "building", "failed"}


def load_packages():
    return [f"{p}/{r}/{b}.zip" for p in LOAD_PLATFORMS for r in LOAD_RUNTIMES for b in LOAD_BENCHES]


def share(rel, reader):
    """Whether reader reads package rel in a phase: the even readers read the
    even packages, the odd ones the odd: each package has 32 readers."""
    return load_packages().index(rel) % 2 == reader % 2


def checked_read(path):
    """(bytes, fstat size, sha256 of the bytes, user.sebs.sha256 via the fd)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        data = b"".join(chunks)
        attr = os.getxattr(fd, "user.sebs.sha256").decode()
    finally:
        os.close(fd)
    return data, size, hashlib.sha256(data).hexdigest(), attr


def read_report(rel, mnt, digests, problems, who):
    try:
        data, size, digest, attr = checked_read(os.path.join(mnt, rel))
    except OSError as e:
        why = ""
        if e.errno == errno.EIO:  # a failed build: its log says why (until the next build)
            try:
                with open(os.path.join(mnt, rel + ".log"), "rb") as f:
                    why = "; build log:\n" + f.read().decode(errors="replace")[-1500:]
            except OSError as e2:
                why = f"; build log unreadable: {e2}"
        problems.append(f"{who}: {rel}: {errno.errorcode.get(e.errno, e.errno)} ({e}){why}")
        return
    if not data:
        problems.append(f"{who}: {rel}: empty read (fstat size {size})")
    elif len(data) != size:
        problems.append(f"{who}: {rel}: short read: {len(data)} bytes, fstat says {size}")
    if digest != attr:
        problems.append(f"{who}: {rel}: bytes hash to {digest[:12]}, user.sebs.sha256 of the "
                        f"same descriptor is {attr[:12]}")
    digests.setdefault(rel, set()).add(digest)


def reader_proc(i, mnt, commands, results, barrier):
    """One reader process: per round, a command (phase-1 set, holder's
    package or None, seed); answers with its problems and digests."""
    while True:
        cmd = commands.get()
        if cmd is None:
            return
        phase1, hold, seed = cmd
        rnd = random.Random(seed)
        problems, digests, reads = [], {}, 0
        held = None
        try:
            if hold is not None:
                try:
                    fd = os.open(os.path.join(mnt, hold), os.O_RDONLY)
                    held = (fd, os.fstat(fd).st_size,
                            os.getxattr(fd, "user.sebs.sha256").decode())
                except OSError as e:
                    problems.append(f"holder {i}: {hold}: open: {e}")
            barrier.wait(BARRIER_TIMEOUT)            # A: evictions start
            order = [rel for rel in phase1 if share(rel, i)]
            rnd.shuffle(order)
            for rel in order:
                read_report(rel, mnt, digests, problems, f"reader {i} (phase 1)")
                reads += 1
            barrier.wait(BARRIER_TIMEOUT)            # B: evictions are over
            if held is not None:
                fd, size, attr = held
                chunks = []
                try:
                    while True:
                        b = os.read(fd, 1 << 20)
                        if not b:
                            break
                        chunks.append(b)
                except OSError as e:
                    problems.append(f"holder {i}: {hold}: read after eviction: {e}")
                os.close(fd)
                data = b"".join(chunks)
                digest = hashlib.sha256(data).hexdigest()
                if len(data) != size or not data:
                    problems.append(f"holder {i}: {hold}: {len(data)} bytes after eviction, "
                                    f"fstat said {size}")
                if digest != attr:
                    problems.append(f"holder {i}: {hold}: evicted while open, its bytes hash "
                                    f"to {digest[:12]}, not {attr[:12]}")
                digests.setdefault(hold, set()).add(digest)
                reads += 1
            barrier.wait(BARRIER_TIMEOUT)            # C: phase 2
            order = [rel for rel in load_packages() if share(rel, i)]
            rnd.shuffle(order)
            for rel in order:
                read_report(rel, mnt, digests, problems, f"reader {i} (phase 2)")
                reads += 1
        except Exception as e:  # noqa: BLE001 - a broken barrier, reported
            problems.append(f"reader {i}: {type(e).__name__}: {e}")
        results.put(("reader", i, problems, {k: sorted(v) for k, v in digests.items()}, reads))


def evictor_proc(i, mnt, commands, results, barrier):
    while True:
        cmd = commands.get()
        if cmd is None:
            return
        evict, seed = cmd
        rnd = random.Random(seed)
        problems, unlinks = [], 0
        try:
            barrier.wait(BARRIER_TIMEOUT)            # A
            order = [rel for rel in evict for _ in range(UNLINKS_PER_EVICTOR)]
            rnd.shuffle(order)
            for rel in order:
                time.sleep(rnd.uniform(0.0, 0.01))
                try:
                    os.unlink(os.path.join(mnt, rel))
                    unlinks += 1
                except OSError as e:
                    problems.append(f"evictor {i}: unlink {rel}: {e}")
            barrier.wait(BARRIER_TIMEOUT)            # B
            barrier.wait(BARRIER_TIMEOUT)            # C
        except Exception as e:  # noqa: BLE001
            problems.append(f"evictor {i}: {type(e).__name__}: {e}")
        results.put(("evictor", i, problems, {}, unlinks))


def xattr_proc(i, mnt, stop, results):
    """Lists and reads every attribute of every package until stop is set."""
    rnd = random.Random(5000 + i)
    problems, shas, sweeps = [], {}, 0
    last_builds = {}
    pkgs = load_packages()
    while not stop.is_set():
        rnd.shuffle(pkgs)
        for rel in pkgs:
            path = os.path.join(mnt, rel)
            try:
                names = os.listxattr(path)
            except OSError as e:
                problems.append(f"xattr {i}: listxattr {rel}: {e}")
                continue
            for name in names:
                try:
                    value = os.getxattr(path, name).decode()
                except OSError as e:
                    if e.errno == errno.ENODATA:  # evicted since the listing
                        continue
                    problems.append(f"xattr {i}: {rel} {name}: {e}")
                    continue
                if name == "user.sebs.state" and value not in STATES:
                    problems.append(f"xattr {i}: {rel}: state {value!r}")
                elif name == "user.sebs.state" and value in ("failed", "stale"):
                    problems.append(f"xattr {i}: {rel}: state {value} (nothing changed, "
                                    "nothing may fail)")
                elif name == "user.sebs.sha256":
                    shas.setdefault(rel, set()).add(value)
                elif name == "user.sebs.builds":
                    n = int(value)
                    if n < last_builds.get(rel, 0):
                        problems.append(f"xattr {i}: {rel}: builds went from "
                                        f"{last_builds[rel]} down to {n}")
                    last_builds[rel] = n
        sweeps += 1
        time.sleep(0.03)  # leaves the two cores to the readers mostly
    results.put(("xattr", i, problems[:50], {k: sorted(v) for k, v in shas.items()}, sweeps))


def daemon_figures(pid):
    """(open descriptors, VmRSS KiB, VmHWM KiB) of the daemon."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    return fds, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def idle_figures(pid):
    """daemon_figures of the idle daemon, with the fewest descriptors seen in
    a second: the kernel sends RELEASE for a closed file asynchronously, and
    a leaked descriptor stays, while one in flight is gone within it."""
    time.sleep(0.3)
    samples = []
    for _ in range(10):
        samples.append(daemon_figures(pid))
        time.sleep(0.1)
    return min(f[0] for f in samples), samples[-1][1], samples[-1][2]


def test_many_readers_evictions_xattrs(sebsfs, tmp_path):
    pkgs = load_packages()
    assert len(pkgs) == 16
    # half of them cached by an earlier sebsfs with the same cache folder,
    # mixed over platforms, runtimes and benchmarks
    cached = [rel for k, rel in enumerate(pkgs) if (k + k // 2) % 2 == 0]
    assert len(cached) == 8 and {r.split("/")[0] for r in cached} == set(LOAD_PLATFORMS)
    first = sebsfs()
    reference = {}
    for rel in cached:
        data, size, digest, attr = checked_read(first.mnt / rel)
        assert data and len(data) == size and digest == attr, rel
        zip_of(data).testzip()
        reference[rel] = digest
    problems = first.stop()
    assert not problems, problems

    m = sebsfs()
    mnt = str(m.mnt)
    pid = m.proc.pid
    for rel in pkgs:
        want = "fresh" if rel in cached else "absent"
        assert state(m.mnt / rel) == want, rel
        assert builds(m.mnt / rel) == 0, rel

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(PROC_READERS + PROC_EVICTORS)
    results = ctx.Queue()
    stop = ctx.Event()
    reader_cmds = [ctx.Queue() for _ in range(PROC_READERS)]
    evictor_cmds = [ctx.Queue() for _ in range(PROC_EVICTORS)]
    procs = [ctx.Process(target=reader_proc, args=(i, mnt, reader_cmds[i], results, barrier),
                         daemon=True) for i in range(PROC_READERS)]
    procs += [ctx.Process(target=evictor_proc, args=(i, mnt, evictor_cmds[i], results, barrier),
                          daemon=True) for i in range(PROC_EVICTORS)]
    xattr_procs = [ctx.Process(target=xattr_proc, args=(i, mnt, stop, results), daemon=True)
                   for i in range(XATTR_READERS)]
    for p in procs + xattr_procs:
        p.start()

    rnd = random.Random(8)
    present = {rel: rel in cached for rel in pkgs}   # has a good package
    expected = {rel: 0 for rel in pkgs}              # builds by this sebsfs
    unlinks = 0
    figures = []
    digests = {rel: set() for rel in pkgs}
    bad = []
    try:
        for rnd_no in range(1, ROUNDS + 1):
            t0 = time.monotonic()
            evict = rnd.sample(pkgs, EVICT_PER_ROUND)
            phase1 = [rel for rel in pkgs if rel not in evict]
            # what the phases must build: phase 1 what it reads without a
            # package; the evictions then take the set's packages; phase 2
            # builds everything without a package
            for rel in phase1:
                if not present[rel]:
                    expected[rel] += 1
                    present[rel] = True
            holds = {}
            for rel in evict:
                if present[rel]:
                    holds[rel] = True
                present[rel] = False
            for rel in pkgs:
                if not present[rel]:
                    expected[rel] += 1
                    present[rel] = True
            # holders only for packages that have one to hold
            held = [rel for rel in evict if rel in holds]
            for i in range(PROC_READERS):
                hold = held[i % len(held)] if held and i < HOLDERS else None
                reader_cmds[i].put((phase1, hold, rnd.random()))
            for i in range(PROC_EVICTORS):
                evictor_cmds[i].put((evict, rnd.random()))
            reads = 0
            for _ in range(PROC_READERS + PROC_EVICTORS):
                try:
                    kind, i, probs, dig, count = results.get(timeout=3 * BARRIER_TIMEOUT)
                except queue_mod.Empty:
                    pytest.fail(f"round {rnd_no}: the readers and evictors did not finish "
                                f"(a hung read?); problems so far: {bad[:20]}")
                bad += probs
                for rel, ds in dig.items():
                    digests[rel].update(ds)
                if kind == "reader":
                    reads += count
                else:
                    unlinks += count
            elapsed = time.monotonic() - t0
            got = {rel: builds(m.mnt / rel) for rel in pkgs}
            wrong = {rel: (got[rel], expected[rel]) for rel in pkgs if got[rel] != expected[rel]}
            fds, rss, hwm = idle_figures(pid)
            figures.append((rnd_no, elapsed, reads, sum(got.values()), fds, rss, hwm))
            print(f"round {rnd_no:2d}: {elapsed:5.2f} s, {reads} reads, builds so far "
                  f"{sum(got.values())}, daemon fds {fds}, VmRSS {rss} KiB, VmHWM {hwm} KiB",
                  flush=True)
            assert not bad, f"round {rnd_no}: {len(bad)} bad reads, e.g.:\n" + "\n".join(bad[:20])
            assert not wrong, (f"round {rnd_no}: user.sebs.builds (got, expected) {wrong}; "
                               f"evicted this round: {evict}")
            for rel, ds in digests.items():
                assert len(ds) <= 1, f"{rel}: reads got different bytes: {sorted(ds)}"
                if ds and rel in reference:
                    assert ds == {reference[rel]}, f"{rel}: rebuilt bytes differ from the cached"
    finally:
        stop.set()
        for q in reader_cmds + evictor_cmds:
            q.put(None)
    xattr_problems, xattr_sweeps = [], 0
    for _ in xattr_procs:
        kind, i, probs, shas, sweeps = results.get(timeout=60)
        xattr_problems += probs
        xattr_sweeps += sweeps
        for rel, values in shas.items():
            assert set(values) <= digests[rel], (rel, values, digests[rel])
    for p in procs + xattr_procs:
        p.join(10)
        if p.is_alive():
            p.kill()
    assert not xattr_problems, "\n".join(xattr_problems[:20])
    assert xattr_sweeps > 0
    assert unlinks == ROUNDS * PROC_EVICTORS * EVICT_PER_ROUND * UNLINKS_PER_EVICTOR
    for rel in pkgs:
        assert len(digests[rel]) == 1, rel
        zip_of(read(m.mnt / rel)).testzip()
    total = sum(expected.values())
    print(f"load: {ROUNDS} rounds, {sum(f[2] for f in figures)} checked reads, {unlinks} unlinks, "
          f"{total} builds, {xattr_sweeps} xattr sweeps of 16 packages")

    # Descriptors and memory.  After WARM_ROUNDS rounds (every package built,
    # the SQLite page cache and malloc's arenas grown to their working size),
    # an idle daemon must hold at most as many descriptors as then: a leak of
    # one per round (or per build, ~3 a round) adds >= 17.  Its RSS moves by
    # warm-up of the allocator and SQLite's caches (measured: +150-290 KiB
    # over rounds 3-20; the same daemon evicting and rebuilding 4 packages in
    # a loop levels off after ~400 builds, ~1.1 MiB above its start),
    # but by less than RSS_GROWTH_LIMIT_KIB (1 MiB): a leak of 64 KiB per
    # round (a 128 KiB read buffer, a build log buffer, or 72 bytes per read
    # at ~900 reads a round) adds >= 1.1 MiB.
    warm = figures[WARM_ROUNDS - 1]
    last = figures[-1]
    assert last[4] <= warm[4], f"daemon descriptors grew: {warm[4]} after round {warm[0]}, {last[4]} after round {last[0]}"
    # Under AddressSanitizer RSS is mostly ASan's quarantine (it grew 16.8 MB
    # here); the plain build of the same CI run checks the bound.
    if not sanitized_build():
        assert last[5] - warm[5] < RSS_GROWTH_LIMIT_KIB, (
            f"daemon RSS grew by {last[5] - warm[5]} KiB from round {warm[0]} to {last[0]}")


# ---------------------------------------------------------------------------
# A benchmark with 20,000 input files (issue 8, "Load", third bullet).  Every
# open stats all of them into a manifest, and the manifest is stored with the
# package; before the compact manifest the daemon grew to ~157 MB (a jansson
# tree per check, on every FUSE thread's malloc arena).

MANY_FILES = 20000
MANY_DIRS = 100
RSS_LIMIT_KIB = 64 * 1024


def add_many_files(suite, count=MANY_FILES):
    """count small data files in 311.compression's resources/ (its init.sh
    copies resources/ into the package)."""
    base = suite / BENCH_DIRS[COMPRESSION] / "resources" / "many"
    per_dir = count // MANY_DIRS
    for d in range(MANY_DIRS):
        folder = base / f"d{d:03d}"
        folder.mkdir(parents=True)
        for k in range(per_dir):
            (folder / f"f{d * per_dir + k:05d}.txt").write_text(f"line {d} {k}\n")


def test_20000_input_files_memory_bounded(sebsfs, suite):
    sanitized = sanitized_build()
    add_many_files(suite)
    rel = "aws/python-3.11/311.compression.zip"

    def figures(m, what, seconds):
        fds, rss, hwm = daemon_figures(m.proc.pid)
        print(f"{MANY_FILES} inputs: {what}: {seconds:.3f} s, VmRSS {rss} KiB, VmHWM {hwm} KiB",
              flush=True)
        # (not under AddressSanitizer: see sanitized_build; peak 507 MB there)
        assert sanitized or hwm < RSS_LIMIT_KIB, f"{what}: the daemon's peak RSS is {hwm} KiB"

    def timed_read(m):
        t0 = time.monotonic()
        data, size, digest, attr = checked_read(m.mnt / rel)
        seconds = time.monotonic() - t0
        assert data and len(data) == size and digest == attr
        return data, seconds

    m = sebsfs()
    data, seconds = timed_read(m)
    names = zip_of(data).namelist()
    assert sum(n.startswith("function/resources/many/") and not n.endswith("/")
               for n in names) == MANY_FILES
    assert builds(m.mnt / rel) == 1
    figures(m, "first open (build)", seconds)
    for k in range(3):
        _, seconds = timed_read(m)
        figures(m, f"cached open {k + 1}", seconds)

    # opens on many FUSE threads at once: every thread's allocations count
    def burst(m):
        t0 = time.monotonic()
        box = []
        threads = [threading.Thread(target=lambda: box.append(timed_read(m)[1]))
                   for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(READ_DEADLINE)
        assert len(box) == 32, "a concurrent open failed or hung"
        return time.monotonic() - t0
    figures(m, "32 concurrent cached opens", burst(m))
    assert builds(m.mnt / rel) == 1
    assert not m.stop()

    # a new sebsfs reads the stored manifest instead of hashing every input
    m = sebsfs()
    _, seconds = timed_read(m)
    figures(m, "first open after a restart", seconds)
    _, seconds = timed_read(m)
    figures(m, "second open after a restart", seconds)
    figures(m, "32 concurrent opens after a restart", burst(m))
    assert builds(m.mnt / rel) == 0


def test_edit_among_concurrent_opens_is_seen(sebsfs, suite):
    """Opens that queue behind a running input check share its result only
    when that check began after they arrived: an edit made while other
    processes keep opening the package is in the very next open's package."""
    add_many_files(suite, 2000)   # a walk long enough to be overlapped
    rel = "aws/python-3.11/311.compression.zip"
    lorem = suite / BENCH_DIRS[COMPRESSION] / "resources" / "lorem.txt"
    m = sebsfs()
    read(m.mnt / rel)
    stop = threading.Event()
    errors = []

    def opener():
        # opens only: each one is an input check (reading would also test
        # the kernel's page cache, which is not what this test is about)
        while not stop.is_set():
            try:
                os.close(os.open(m.mnt / rel, os.O_RDONLY))
            except OSError as e:
                errors.append(e)

    threads = [threading.Thread(target=opener, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for k in range(3):
            time.sleep(0.3)
            marker = f"edit {k} " * (k + 1)
            lorem.write_text(marker)
            assert member(read(m.mnt / rel), "function/resources/lorem.txt") == marker.encode(), k
    finally:
        stop.set()
        for t in threads:
            t.join(READ_DEADLINE)
    assert not errors, errors[:5]
