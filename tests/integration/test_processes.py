"""Programs die with their build: nothing a build started outlives sebsfs."""

import os
import signal
import subprocess
import threading

from sebsfs_testlib import BENCH_DIRS, DYNAMIC_HTML, mounted, wait_for

# Records, atomically, its own pid, the process group the kernel put it in
# and the pid of a grandchild, then never ends.
ENDLESS_INIT = """#!/bin/bash
read -r _ _ _ _ pgid _ < /proc/$$/stat
sleep 100000 &
echo "$$ $pgid $!" > "{pids}.tmp"
mv "{pids}.tmp" "{pids}"
wait
"""


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_kill9_of_sebsfs_kills_init_sh_and_its_children(sebsfs, suite, tmp_path):
    pids_file = tmp_path / "init.pids"
    (suite / BENCH_DIRS[DYNAMIC_HTML] / "init.sh").write_text(ENDLESS_INIT.format(pids=pids_file))
    m = sebsfs()
    z = m.zip("aws", "python-3.11", DYNAMIC_HTML)

    def read_until_sebsfs_dies():
        try:
            with open(z, "rb") as f:
                f.read()
        except OSError:
            pass  # ENOTCONN once sebsfs is gone

    reader = threading.Thread(target=read_until_sebsfs_dies, daemon=True)
    reader.start()
    assert wait_for(pids_file.exists, 60), f"init.sh never ran:\n{m.stderr()}"
    bash_pid, pgid, sleep_pid = (int(x) for x in pids_file.read_text().split())
    try:
        assert pgid != os.getpgrp(), "init.sh must run in a process group of its own"
        assert group_alive(pgid) and alive(sleep_pid)

        m.signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        gone = wait_for(lambda: not group_alive(pgid), 5)
        assert gone, f"process group {pgid} of init.sh still alive 5 s after kill -9 of sebsfs"
        assert not alive(bash_pid) and not alive(sleep_pid)
    finally:
        # On a failure, leave nothing behind (both are processes this test made).
        for pid in (sleep_pid, bash_pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if mounted(m.mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(m.mnt)], capture_output=True, timeout=30)
        reader.join(30)
    assert not mounted(m.mnt)
    assert not reader.is_alive()
