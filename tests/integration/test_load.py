"""Load: concurrent readers while packages are evicted under them (issue 7,
items 2 and 3).

20 reader threads read 10 packages over and over while 2 threads unlink
(evict) them, for LOAD_SECONDS.  Every read is checked: it must return the
complete package, byte-identical to the reference read before the load
started (builds are reproducible), never an empty file, never EIO, never a
zip that does not open; and no reader may hang (each read has a deadline,
and all threads must have finished shortly after the load ends).  Before the
fix this deadlocked the mount (a daemon thread stuck invalidating pages) or
served empty reads.
"""

import errno
import os
import random
import threading
import time

import pytest

from sebsfs_testlib import COMPRESSION, DYNAMIC_HTML, read, sha256, zip_of

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
