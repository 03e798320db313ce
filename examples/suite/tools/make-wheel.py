#!/usr/bin/env python3
"""Build the local wheels of the example suite (python3 standard library only).

    python3 examples/suite/tools/make-wheel.py [OUTPUT_DIR]

Writes sebs_example_util-<version>-py3-none-any.whl for every version in
VERSIONS into OUTPUT_DIR (default: the wheels/ folder of 110.dynamic-html's
python code).  The wheels are reproducible: sorted entries, fixed timestamps
and permissions, so running the script again gives byte-identical files.
"""

import base64
import hashlib
import os
import sys
import zipfile

NAME = "sebs_example_util"
DIST = "sebs_example_util"
VERSIONS = ["1.0.0", "0.9.0"]
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "sebs-example-util", NAME)
DEFAULT_OUT = os.path.join(HERE, os.pardir, "benchmarks", "100.webapps",
                           "110.dynamic-html", "python", "wheels")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def record_hash(data):
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def files_for(version):
    files = {}
    for name in sorted(os.listdir(SOURCE)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(SOURCE, name), "rb") as f:
            data = f.read().replace(b"@VERSION@", version.encode())
        files[f"{NAME}/{name}"] = data
    info = f"{DIST}-{version}.dist-info"
    files[f"{info}/METADATA"] = (
        "Metadata-Version: 2.1\n"
        f"Name: {DIST.replace('_', '-')}\n"
        f"Version: {version}\n"
        "Summary: Tiny template and checksum helpers for the sebsfs example suite\n"
        "License: MIT\n"
        "Requires-Python: >=3.7\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\n"
        "Generator: sebsfs-make-wheel (1.0)\n"
        "Root-Is-Purelib: true\n"
        "Tag: py3-none-any\n"
    ).encode()
    files[f"{info}/top_level.txt"] = f"{NAME}\n".encode()
    record = "".join(f"{path},{record_hash(data)},{len(data)}\n"
                     for path, data in files.items())
    record += f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    return files


def write_wheel(out_dir, version):
    path = os.path.join(out_dir, f"{DIST}-{version}-py3-none-any.whl")
    files = files_for(version)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        # dist-info last, RECORD very last, as the wheel spec recommends
        for name in sorted(files, key=lambda n: (".dist-info/" in n, n.endswith("/RECORD"), n)):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    return path


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(out_dir, exist_ok=True)
    for version in VERSIONS:
        print(write_wheel(out_dir, version))


if __name__ == "__main__":
    main()
