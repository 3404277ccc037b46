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

- `tqdm.notebook`, for BigQuery's client alone: Beam's BigQuery IO imports the client (when
  installed, as TFX's dependencies install it; `apache_beam.io` imported it in every process
  until the entry below), which imports tqdm's notebook bar for its
  `progress_bar_type="tqdm_notebook"` option, and with it
  ipywidgets and IPython: 0.28-0.4 s of a process that imports the client (0.98 s against
  0.70 s for the client's import alone, measured one process each). Nothing here runs a
  BigQuery query; the client catches the ImportError and leaves that one option out.

- `apache_beam.io.gcp.bigquery`, for `apache_beam.io`'s package init alone: it imports Beam's
  BigQuery and Pub/Sub IO (and their Google Cloud clients), gcsio and the cross-language IO with
  a star import in one `try ... except ImportError` block, to offer them as `beam.io.<name>`.
  Nothing here reads or writes BigQuery or Pub/Sub; 0.27-0.31 s of every process that imports
  Beam (`import apache_beam`: 0.64-0.68 s -> 0.37-0.38 s, measured three times each way). The
  block is skipped as it is where those clients are not installed; a module that imports
  `apache_beam.io.gcp.bigquery` (or gcsio, or Beam's GCS filesystem) itself still gets it.

Deferred, not refused: `tensorflow_model_analysis.metrics.bleu` and `.rouge` (TFMA's text
metrics) are loaded when first used rather than when TFMA's metrics package binds their names
(which is all it does with them at import): BLEU brings sacrebleu, ROUGE nltk and
rouge_score, ~0.25 s of every process that imports TFMA (and TFX imports TFMA in every run,
through its component specs). Their metric classes register themselves when they load; this
pipeline's evaluation configs (pipeline/definition/eval_config.py) name neither. Deferred
too, each only bound by its importer at import time:
- `tensorflow_model_analysis.view`: TFMA's notebook views (`tfma.view.render_*`), whose widget
  module loads ipywidgets and TFMA's Jupyter renderer; TFMA imports the package for two of its
  submodules (`view.util`, `view.view_types`), which load as before. ~0.07 s of TFMA's import.
- `tfx.components.infra_validator.model_server_runners.kubernetes_runner`: the Kubernetes client
  (600 modules) for the InfraValidator, which this pipeline does not use; TFX's
  `tfx.components` imports every component. ~0.1 s.
- `altair`: only Great Expectations' KL-divergence expectation imports it, for its charts,
  drawn when a report renders one; ~0.1 s of GX's import.
- `tfx.components`, the package's init: it imports every TFX component, and with them
  modules no run here uses, KerasTuner (for the Tuner's type hints) and through it Keras 3
  with matplotlib and scikit-learn, ~1,000 modules. pipeline/definition/builder.py imports
  each component it uses from its own module (`tfx.components.trainer.component`), which loads
  as before; a `--tune` run imports the Tuner's. 0.4-0.6 s of every run's set-up (`import
  tfx.components` 4.22 s against the used components' modules 3.66 s with the next entry, mean
  of 5 interleaved pairs).
- `IPython`, the package's init (its shell, prompt_toolkit, jedi): TFDV imports
  `IPython.display` for its notebook views (`tfdv.visualize_statistics`), which loads as
  before without it, and Beam asks `IPython.get_ipython()` whenever it runs a pipeline, to
  know whether it runs in a notebook. A process that has not run IPython's init has no IPython
  shell, so the deferred package answers that one name itself, with None, as IPython does
  without a shell (_ANSWERED). ~0.3 s of the set-up, and ~0.5 s of the checks' process, which
  ran the init again at its first Beam pipeline.
- `google.cloud.pubsub`, the Pub/Sub client: Beam's DirectRunner imports its Pub/Sub IO
  whenever it runs a pipeline, to refuse Pub/Sub reads and writes to the batch runner, and the
  IO binds the client at import. Nothing here uses Pub/Sub. 0.14-0.18 s in each process that
  runs a Beam pipeline (the run's, and its checks' process).
A name asked of a deferred package that is one of its submodules is not a use: the import
system asks for it (`from package import submodule`) before it imports the submodule.

`None` in sys.modules makes `import rfc3987_syntax` raise ImportError, which jsonschema
catches; GX and BigQuery's client catch the ImportError the finder below raises for theirs
(GX keeps a placeholder). Called first thing by the command line (and by the tests' conftest, so the tests'
in-process runs import what users' runs import); it changes nothing already imported.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

UNUSED = ("rfc3987_syntax",)
GX_IMPORTER = "great_expectations.compatibility.google"
# module -> the one module whose own import statements are refused it.
REFUSED_TO = {
    "google.cloud.bigquery": GX_IMPORTER,
    "google.cloud.secretmanager": GX_IMPORTER,
    "tqdm.notebook": "google.cloud.bigquery._tqdm_helpers",
    "apache_beam.io.gcp.bigquery": "apache_beam.io",
}
# Modules whose code runs when a name is first asked of them, not when they are imported.
DEFERRED = ("tensorflow_model_analysis.metrics.bleu", "tensorflow_model_analysis.metrics.rouge",
            "tensorflow_model_analysis.view",
            "tfx.components.infra_validator.model_server_runners.kubernetes_runner", "altair",
            "tfx.components", "IPython", "google.cloud.pubsub")


class _RefusedToOneImporter(importlib.abc.MetaPathFinder):
    """Refuses each REFUSED_TO module to its importer's own import statements; declines
    everything else (any other importer gets the module)."""

    def find_spec(self, fullname, path=None, target=None):
        importer = REFUSED_TO.get(fullname)
        if importer is not None and _imported_by(importer):
            raise ModuleNotFoundError(f"No module named {fullname!r} (kept from {importer} "
                                      f"by {__name__})", name=fullname)
        return None


def _imported_by(module: str) -> bool:
    frame = sys._getframe(1)  # noqa: SLF001 - who is importing: the import statement's frame
    while frame is not None:
        if frame.f_globals.get("__name__") == module:
            return True
        frame = frame.f_back
    return False


class _Deferred(importlib.abc.MetaPathFinder):
    """Finds DEFERRED modules where the path finder would, with a loader that runs the module's
    code when something first asks it for a name it does not have yet (_RunOnFirstUse)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in DEFERRED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.abc.Loader):
            return spec
        spec.loader = _RunOnFirstUse(spec.loader)
        return spec


class _RunOnFirstUse(importlib.abc.Loader):
    """The module is made with its import metadata (__name__, __file__, __spec__) and a module
    `__getattr__` (PEP 562) that runs its code on the first other name asked of it.
    importlib.util.LazyLoader would run it on any attribute, __file__ included, and
    inspect.getmodule reads every module's __file__: TensorFlow's and Great Expectations' calls
    of it ran the deferred modules in the middle of the run."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        loader = self.loader

        def __getattr__(name: str):  # noqa: N807 - the module-level hook's name
            if name in _NOT_A_USE or _is_submodule(module, name):
                raise AttributeError(name)
            answered = _ANSWERED.get(module.__name__, {}).get(name)
            if answered is not None:
                return answered
            del module.__dict__["__getattr__"]
            module.__loader__ = module.__spec__.loader = loader
            loader.exec_module(module)
            return getattr(module, name)

        module.__getattr__ = __getattr__


def _is_submodule(module, name: str) -> bool:
    path = module.__dict__.get("__path__")  # a package's; a plain module has no submodules
    return path is not None and importlib.machinery.PathFinder.find_spec(
        f"{module.__name__}.{name}", path) is not None


# Names probed on every module by tools that walk sys.modules (a module of code has none of
# them), answered without running the deferred module. Its import metadata (__file__,
# __spec__, __cached__) is in its dict from the start and never reaches __getattr__.
_NOT_A_USE = frozenset({"__path__", "__wrapped__", "__warningregistry__"})


def _no_ipython_shell() -> None:
    """IPython.get_ipython() where IPython's init never ran: no shell (IPython's own answer
    when none was started)."""
    return None


# Names a deferred module answers without running its code: what it would answer in a
# process where it never ran.
_ANSWERED = {"IPython": {"get_ipython": _no_ipython_shell}}


def keep_out() -> None:
    for name in UNUSED:
        sys.modules.setdefault(name, None)
    for finder in (_Deferred, _RefusedToOneImporter):
        if not any(isinstance(f, finder) for f in sys.meta_path):
            sys.meta_path.insert(0, finder())
