"""Modules this program never uses that a dependency would import anyway, kept out of the process.

- `rfc3987_syntax`: jsonschema imports it, when installed, for its "iri" and "iri-reference"
  format checks, and its import compiles a Lark grammar: 2-3 s of every process that imports
  Great Expectations (GX -> altair -> jsonschema), measured 3.1-3.2 s alone under load, which
  is more than the rest of jsonschema and altair together. It is installed only because
  jupyter-events asks for jsonschema's format-nongpl extra (TFMA's notebook widgets); nothing
  here validates an IRI format, and jsonschema leaves those two checks out, as it does when
  the package is missing.

`None` in sys.modules makes `import rfc3987_syntax` raise ImportError, which jsonschema
catches. Called first thing by the command line (and by the tests' conftest, so the tests'
in-process runs import what users' runs import); it changes nothing already imported.
"""
from __future__ import annotations

import sys

UNUSED = ("rfc3987_syntax",)


def keep_out() -> None:
    for name in UNUSED:
        sys.modules.setdefault(name, None)
