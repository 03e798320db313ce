"""bench/benchlib.py - helpers the Python benchmarks share (not a benchmark)."""
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def positive(name, default):
    """The environment variable name as a positive integer, or default."""
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) <= 0:
        sys.exit(f"bench: {name} must be a positive integer")
    return int(value)


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"bench: {what} after {seconds} s")
        time.sleep(0.05)


def sebsfs_binary():
    """build/src/fs/sebsfs, or that of SEBSFS_BUILD_DIR; exits when it is missing."""
    build = os.environ.get("SEBSFS_BUILD_DIR", "build")
    binary = os.path.join(build if os.path.isabs(build) else os.path.join(REPO, build),
                          "src", "fs", "sebsfs")
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench: {binary} not found; build first (ninja -C {build})")
    return binary
