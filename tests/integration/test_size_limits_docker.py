"""Size limits of the aws java package, a .jar (Maven builds it in the Java
build image: docker suite).  The same checks as test_size_limits.py makes on
zips: user.sebs.unzipped_size against Python's zipfile and `unzip -Zl`, and
a warning in the xattr and the .jar.log once a (lowered) limit is passed."""

import json
from pathlib import Path

from sebsfs_testlib import SLEEP, read, run, xattr

from test_size_limits import unzip_total, unzipped_sum


def test_jar_unzipped_size_and_warning(sebsfs, tmp_path):
    assert run(["docker", "version"]).returncode == 0, "no Docker daemon"
    limits = tmp_path / "limits.json"
    limits.write_text(json.dumps({"aws": {"zipped": "100 kB"}}))
    m = sebsfs(options=("builder=docker", f"size_limits_file={limits}"))
    jar = m.path("aws", "java-17", f"{SLEEP}.jar")
    data = read(jar)
    copy = tmp_path / "copy.jar"
    copy.write_bytes(data)
    size = unzipped_sum(data)
    assert xattr(jar, "user.sebs.unzipped_size") == str(size)
    assert unzip_total(copy) == size
    assert len(data) >= 100000, len(data)   # the shaded jar holds jackson
    warning = (f"aws size limit exceeded: zipped {len(data)} bytes (limit 100000, exceeded);"
               f" unzipped {size} bytes (limit 262144000)")
    assert xattr(jar, "user.sebs.size_warning") == warning
    log = read(Path(f"{jar}.log")).decode(errors="replace")
    assert f"[sebsfs] size warning: {warning}\n" in log
