#!/usr/bin/env python3
"""No program is started through a shell string anywhere in src/.

sebsfs runs programs with argv arrays (posix_spawn / fork+exec, see
src/common/process.c), so a name from the SeBS tree can never be read as
shell syntax.  This check fails on any call of system(), popen() or
wordexp(), and on any exec of a shell ("sh", "/bin/sh", "bash" followed by
"-c"), in code or comments alike: a comment that needs one of these words can
say "a shell string" instead.

Usage: no_shell_strings.py SOURCE_DIR   (exit 1 and one line per finding)
"""
import pathlib
import re
import sys

FORBIDDEN = [
    (re.compile(r"\b(system|popen|wordexp)\s*\("), "runs a shell string"),
    (re.compile(r'"(/bin/|/usr/bin/)?(ba|da)?sh"\s*,\s*"-c"'), "execs a shell with -c"),
]


def scan(root: pathlib.Path) -> list[str]:
    findings = []
    files = sorted(p for p in root.rglob("*") if p.suffix in (".c", ".h"))
    if not files:
        return [f"{root}: no C sources found (wrong folder?)"]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            for pattern, why in FORBIDDEN:
                if pattern.search(line):
                    findings.append(f"{path}:{lineno}: {why}: {line.strip()}")
    return findings


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    findings = scan(pathlib.Path(sys.argv[1]))
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
