"""A reader of SeBS cache folders that decides as SeBS's deployer does (not a
test module).

It follows SeBS's own code (spcl/serverless-benchmarks, the authority):
Cache.code_cache_keys, get_benchmark_config, get_code_package/get_container
(sebs/cache.py), and Benchmark.query_cache, hash_directory, code_location and
directory_size (sebs/benchmark.py).  It is written from that code, not copied,
and has no dependency on SeBS or Docker.  A package entry is *current* when
SeBS would use it without building: the entry exists under SeBS's keys, its
hash equals hash_directory of the benchmark's source, and (code packages) the
file or folder its location names exists.

hash_directory here doubles as the cross-check of sebsfs's C implementation
of the same hash (user.sebs.sebs_hash).
"""

import glob
import hashlib
import json
import os
from pathlib import Path

# Benchmark.hash_directory: per language, the benchmark's own files (globbed
# in its language folder, not recursively), then "*.sh" and "*.json", then the
# platform's wrappers; a wrapper pattern naming a folder is walked whole.
SOURCE_PATTERNS = {
    "python": ["*.py", "requirements.txt*"],
    "nodejs": ["*.js", "package.json"],
    "java": ["*.java", "pom.xml"],
    "cpp": ["*.cpp", "*.hpp", "dependencies.json"],
}
SHARED_PATTERNS = ["*.sh", "*.json"]
WRAPPER_PATTERNS = {
    "python": ["*.py"],
    "nodejs": ["*.js"],
    "java": ["src"],
    "cpp": ["*.cpp", "*.hpp"],
}
# GCP keys code packages by function generation (GCP.system_variant_suffix).
GCP_PACKAGE_VARIANTS = {"function-gen1": "gen1", "function-gen2": "gen2"}


def find_benchmark(sebs_root, benchmark):
    """sebs.utils.find_benchmark: benchmarks/<group>/<benchmark>."""
    for group in sorted(Path(sebs_root, "benchmarks").iterdir()):
        candidate = group / benchmark
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"benchmark {benchmark} not in {sebs_root}")


def _feed(md5, path):
    with open(path, "rb") as f:
        md5.update(f.read())


def hash_directory(sebs_root, directory, deployment, language, variant="default"):
    """MD5 over the files SeBS hashes, in SeBS's order (directory order of
    each glob, as Python's glob gives it)."""
    md5 = hashlib.md5()
    selected = SOURCE_PATTERNS[language] + SHARED_PATTERNS
    for pattern in selected:
        for path in glob.glob(os.path.join(directory, pattern)):
            _feed(md5, path)
    if variant != "default":
        variant_dir = os.path.join(directory, variant)
        if os.path.isdir(variant_dir):
            patch = os.path.join(variant_dir, "patch.diff")
            if os.path.exists(patch):
                _feed(md5, patch)
            else:
                for pattern in selected:
                    for path in glob.glob(os.path.join(variant_dir, pattern)):
                        _feed(md5, path)
    wrappers = os.path.join(sebs_root, "benchmarks", "wrappers", deployment, language)
    for pattern in WRAPPER_PATTERNS[language]:
        for path in glob.glob(os.path.join(wrappers, pattern)):
            if os.path.isdir(path):
                for root, _dirs, files in os.walk(path):
                    for name in files:
                        _feed(md5, os.path.join(root, name))
            else:
                _feed(md5, path)
    return md5.hexdigest()


def benchmark_hash(sebs_root, benchmark, deployment, language, variant="default"):
    """Benchmark.hash: hash_directory of <benchmark>/<language>."""
    directory = find_benchmark(sebs_root, benchmark) / language
    return hash_directory(sebs_root, str(directory), deployment, language, variant)


def directory_size(directory):
    """Benchmark.directory_size: bytes of every file below, in MiB."""
    sizes = [p.stat().st_size for p in Path(directory).glob("**/*") if p.is_file()]
    return sum(sizes) / 1024.0 / 1024.0


def code_cache_keys(language, version, architecture, container=False,
                    system_variant_suffix=None, language_variant="default"):
    """Cache.code_cache_keys: (base keys, extra keys)."""
    base = [language, "containers" if container else "code_package"]
    extra = [language_variant]
    if system_variant_suffix is not None:
        extra.append(system_variant_suffix)
    extra += [version, architecture]
    return base, extra


def benchmark_config(cache_dir, deployment, benchmark):
    """Cache.get_benchmark_config."""
    path = Path(cache_dir, benchmark, "config.json")
    if not path.exists():
        return None
    cfg = json.loads(path.read_text())
    return cfg.get(deployment)


def _keys_exist(obj, keys):
    for key in keys:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        else:
            return False
    return True


def _keys_get(obj, keys):
    for key in keys:
        obj = obj[key]
    return obj


def cached_entry(cache_dir, deployment, benchmark, keys):
    """Cache.get_code_package / get_container: the entry, or None."""
    cfg = benchmark_config(cache_dir, deployment, benchmark)
    if cfg and _keys_exist(cfg, keys):
        return _keys_get(cfg, keys)
    return None


class Verdict:
    """What SeBS's Benchmark.query_cache and build() would conclude."""

    def __init__(self, entry, current_hash, location):
        self.entry = entry
        self.current_hash = current_hash
        self.location = location

    @property
    def is_cached(self):
        return self.entry is not None

    @property
    def is_cached_valid(self):
        return self.is_cached and self.entry.get("hash") == self.current_hash

    @property
    def current(self):
        """SeBS uses the entry without building, and what it would deploy
        exists (code packages: the location; images: URI and ID)."""
        if not self.is_cached_valid:
            return False
        if "image-uri" in self.entry or "image-id" in self.entry:
            if not self.entry.get("image-uri") or not self.entry.get("image-id"):
                return False
        return self.location is None or os.path.exists(self.location)

    def __repr__(self):
        return (f"Verdict(entry={self.entry!r}, current_hash={self.current_hash!r}, "
                f"location={self.location!r})")


def query(cache_dir, sebs_root, deployment, benchmark, language, version, architecture,
          system_variant="package", language_variant="default"):
    """Benchmark.query_cache for one deployment variant (SeBS's names:
    "package", "container", "function-gen1", "function-gen2")."""
    container = system_variant == "container"
    suffix = GCP_PACKAGE_VARIANTS.get(system_variant) if deployment == "gcp" else None
    base, extra = code_cache_keys(language, version, architecture, container, suffix,
                                  language_variant)
    entry = cached_entry(cache_dir, deployment, benchmark, base + extra)
    current_hash = benchmark_hash(sebs_root, benchmark, deployment, language, language_variant)
    location = None
    if entry is not None and "location" in entry:
        # Benchmark.code_location: joined to the cache folder
        location = os.path.join(cache_dir, entry["location"])
    elif entry is not None and not container:
        location = os.path.join(cache_dir, "(no location)")
    return Verdict(entry, current_hash, location)
