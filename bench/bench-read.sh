#!/usr/bin/env bash
# bench/bench-read.sh - measure what reading packages through sebsfs costs.
#
# A benchmark, not a test: it prints numbers and never fails on them.
# Mounts a SeBS tree (default: the bundled example suite) with a fresh cache in
# a temporary folder, then measures, in one run on one machine:
#   - cold build: the first open+read of a never-built package;
#   - cache-hit open: open+close of the built package (median);
#   - read throughput of the package through the mount vs. reading the same
#     cached file directly from <cache>/packages/<sha256>.zip (found via the
#     user.sebs.sha256 xattr), and the ratio mount/direct;
#   - stat latency through the mount vs. direct (os.stat in a loop).
# With hyperfine installed it also compares `cat` of both files with hyperfine.
#
# Usage: bench/bench-read.sh [SEBS_ROOT]
# Environment:
#   SEBSFS_BUILD_DIR  build directory holding src/fs/sebsfs (default: build)
#   BENCH_PACKAGE     package relative to the mount
#                     (default: aws/python-3.11/110.dynamic-html.zip)
#   BENCH_READS       reads per round for the throughput test (default: 200)
#   BENCH_STATS       stat calls per measurement (default: 10000)
#   BENCH_OPTS        extra -o options for sebsfs, e.g. "jobs=2"
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SEBSFS_BUILD_DIR:-build}"
case "$build" in
	/*) bin="$build/src/fs/sebsfs" ;;
	*) bin="$repo/$build/src/fs/sebsfs" ;;
esac
package="${BENCH_PACKAGE:-aws/python-3.11/110.dynamic-html.zip}"
reads="${BENCH_READS:-200}"
stats="${BENCH_STATS:-10000}"
sebs_root="${1:-}"

[[ -x "$bin" ]] || { echo "bench: $bin not found; build first (ninja -C $build)" >&2; exit 1; }
[[ "$reads" =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_READS must be a positive integer" >&2; exit 1; }
[[ "$stats" =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_STATS must be a positive integer" >&2; exit 1; }

tmp="$(mktemp -d -t sebsfs-bench.XXXXXX)"
mnt="$tmp/mnt"
cache="$tmp/cache"
daemon_log="$tmp/sebsfs.log"
mkdir -p "$mnt"
pid=""

cleanup() {
	local rc=$?
	set +e
	if mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"
	fi
	if [[ -n "$pid" ]]; then
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	fi
	if [[ "$rc" -ne 0 && -s "$daemon_log" ]]; then
		echo "bench: failed; sebsfs output:" >&2
		tail -n 30 "$daemon_log" >&2
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

opts="cache=$cache"
if [[ -n "${BENCH_OPTS:-}" ]]; then
	opts="$opts,$BENCH_OPTS"
fi
args=(-f -o "$opts")
if [[ -n "$sebs_root" ]]; then
	args+=("$sebs_root")
fi
args+=("$mnt")

"$bin" "${args[@]}" >"$daemon_log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	mountpoint -q "$mnt" && break
	kill -0 "$pid" 2>/dev/null || { echo "bench: sebsfs exited before mounting" >&2; exit 1; }
	sleep 0.1
done
mountpoint -q "$mnt" || { echo "bench: not mounted after 10 s" >&2; exit 1; }

echo "sebsfs bench: $(uname -srm), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "tree: ${sebs_root:-bundled example suite}; package: $package"
echo

python3 - "$mnt" "$cache" "$package" "$reads" "$stats" <<'EOF'
import os
import statistics
import sys
import time

mnt, cache, package, reads, stats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
path = os.path.join(mnt, package)
buf = bytearray(1 << 20)

def read_all(p):
    n = 0
    with open(p, "rb", buffering=0) as f:
        while True:
            k = f.readinto(buf)
            if not k:
                return n
            n += k

def ms(s):
    return f"{s * 1e3:9.3f} ms"

def us(s):
    return f"{s * 1e6:9.2f} us"

# Cold build: the first open+read of a never-built package.
state = os.getxattr(path, "user.sebs.state").decode()
t0 = time.perf_counter()
size = read_all(path)
cold = time.perf_counter() - t0
print(f"cold build + first read   {ms(cold)}   (state before: {state}; {size} bytes)")

sha = os.getxattr(path, "user.sebs.sha256").decode()
direct = os.path.join(cache, "packages", sha + ".zip")
if not os.path.isfile(direct):
    sys.exit(f"bench: cached file {direct} not found")
assert os.path.getsize(direct) == size, "size through the mount differs from the cached file"

# Cache-hit open: open + close of the built package.
def open_close(p):
    fd = os.open(p, os.O_RDONLY)
    os.close(fd)

def median_time(fn, arg, n):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(arg)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)

open_close(path)
hit_mnt = median_time(open_close, path, 200)
hit_dir = median_time(open_close, direct, 200)
print(f"cache-hit open+close      {ms(hit_mnt)}   (direct {ms(hit_dir).strip()}; median of 200)")

# Read throughput: N whole-file reads per round, 5 rounds, median round.
def throughput(p):
    read_all(p)  # warm up
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reads):
            read_all(p)
        rounds.append(time.perf_counter() - t0)
    return size * reads / statistics.median(rounds)

tp_mnt = throughput(path)
tp_dir = throughput(direct)
print(f"read through mount        {tp_mnt / 1e6:9.1f} MB/s   ({reads} reads of {size} bytes per round, median of 5)")
print(f"read cached file direct   {tp_dir / 1e6:9.1f} MB/s")
print(f"ratio mount/direct        {tp_mnt / tp_dir:9.3f}")
if size < (1 << 20):
    print("  (a small package: this measures the cost per open+read more than throughput;"
          " set BENCH_PACKAGE or pass a SEBS_ROOT with larger packages)")

# stat latency.
def stat_loop(p):
    st = os.stat
    t0 = time.perf_counter()
    for _ in range(stats):
        st(p)
    return (time.perf_counter() - t0) / stats

s_mnt = min(stat_loop(path) for _ in range(3))
s_dir = min(stat_loop(direct) for _ in range(3))
print(f"stat through mount        {us(s_mnt)}   (best of 3 x {stats})")
print(f"stat direct               {us(s_dir)}")
print(f"ratio mount/direct        {s_mnt / s_dir:9.1f}")
with open(os.path.join(os.path.dirname(cache), "direct-path"), "w") as f:
    f.write(direct)
EOF

if command -v hyperfine >/dev/null 2>&1; then
	direct="$(cat "$tmp/direct-path")"
	echo
	echo "hyperfine: cat through the mount vs. direct (includes process start-up)"
	hyperfine -N --warmup 5 --runs 100 \
		-n mount "cat $mnt/$package" \
		-n direct "cat $direct"
else
	echo
	echo "(hyperfine not installed: python3 timings only)"
fi
