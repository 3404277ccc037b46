"""Modules this program never uses that a dependency would import anyway, kept out of the process.

- `rfc3987_syntax`: jsonschema imports it, when installed, for its "iri" and "iri-reference"
  format checks, and its import compiles a Lark grammar: 2-3 s of every process that imports
  Great Expectations (GX -> altair -> jsonschema), measured 3.1-3.2 s alone under load, which
  is more than the rest of jsonschema and altair together. It is installed only because
  jupyter-events asks for jsonschema's format-nongpl extra (TFMA's notebook widgets); nothing
  here validates an IRI format, and jsonschema leaves those two checks out, as it does when
  the package is missing.

- `google.cloud.bigquery` and `google.cloud.secretmanager`, for Great Expectations alone: its
  compatibility module imports them when installed (TFX's dependencies install them), for
  BigQuery datasources and Secret Manager config values, neither of which the data contract
  uses. BigQuery's client brings tqdm.notebook, ipywidgets and IPython with it: 0.65-0.85 s of
  GX's 2.9 s import (measured three times each way, one process per import). Any other module
  that imports them gets them: only GX's compatibility module is refused, so a Beam or TFX
  extension that needs BigQuery still works.

`None` in sys.modules makes `import rfc3987_syntax` raise ImportError, which jsonschema
catches; GX catches the ImportError the finder below raises for its two and keeps a
placeholder. Called first thing by the command line (and by the tests' conftest, so the tests'
in-process runs import what users' runs import); it changes nothing already imported.
"""
from __future__ import annotations

import importlib.abc
import sys

UNUSED = ("rfc3987_syntax",)
GX_UNUSED = ("google.cloud.bigquery", "google.cloud.secretmanager")
GX_IMPORTER = "great_expectations.compatibility.google"


class _RefusedToGreatExpectations(importlib.abc.MetaPathFinder):
    """Refuses GX_UNUSED to GX_IMPORTER's own import statements; declines everything else."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in GX_UNUSED and _imported_by(GX_IMPORTER):
            raise ModuleNotFoundError(f"No module named {fullname!r} (kept from Great "
                                      f"Expectations by {__name__})", name=fullname)
        return None


def _imported_by(module: str) -> bool:
    frame = sys._getframe(1)  # noqa: SLF001 - who is importing: the import statement's frame
    while frame is not None:
        if frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back
    return False


def keep_out() -> None:
    for name in UNUSED:
        sys.modules.setdefault(name, None)
    if not any(isinstance(f, _RefusedToGreatExpectations) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefusedToGreatExpectations())
