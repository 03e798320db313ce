"""sebs_example_util: tiny helpers used by the sebsfs example benchmarks.

A stand-in for the third-party libraries real SeBS benchmarks install (jinja2,
Pillow, ...): it is installed from a local wheel, so the example suite builds
without network access.
"""

import html
import re

__version__ = "@VERSION@"

_PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")
_LOOP = re.compile(r"{%\s*for\s+(\w+)\s+in\s+(\w+)\s*%}(.*?){%\s*endfor\s*%}", re.S)


def render(template, **values):
    """Render a very small subset of the Jinja syntax: {{ name }} and
    {% for x in items %}...{% endfor %}.  Values are HTML-escaped."""

    def loop(match):
        var, seq, body = match.group(1), match.group(2), match.group(3)
        return "".join(render(body, **dict(values, **{var: item}))
                       for item in values.get(seq, []))

    text = _LOOP.sub(loop, template)
    return _PLACEHOLDER.sub(lambda m: html.escape(str(values.get(m.group(1), ""))), text)


def checksum(data):
    """Adler-32 style checksum of bytes, as an int (no zlib needed)."""
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % 65521
        b = (b + a) % 65521
    return (b << 16) | a
