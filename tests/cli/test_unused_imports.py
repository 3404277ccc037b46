"""pipeline/cli/unused_imports.py: what the command line keeps out of its process."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

PROBE = """
import sys
{keep_out}
import jsonschema  # Great Expectations imports it (through altair) in every run
checker = jsonschema.FormatChecker()
jsonschema.validate({{"url": "http://127.0.0.1"}}, {{"type": "object"}}, format_checker=checker)
print("loaded" if sys.modules.get("rfc3987_syntax") else "absent", "iri" in checker.checkers)
"""


def _probe(keep_out: bool, probe: str = PROBE) -> list[str]:
    """What `probe` prints in a new process, with or without keep_out() first."""
    code = probe.format(keep_out="from pipeline.cli import unused_imports\n"
                                 "unused_imports.keep_out()" if keep_out else "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()


@pytest.mark.probe
def test_great_expectations_runs_without_the_iri_grammar_jsonschema_would_compile():
    """Without the lever, importing jsonschema compiles rfc3987_syntax's grammar (2-3 s, measured);
    with it the module is never loaded and jsonschema still validates, less the two IRI
    formats nothing here checks. If the first assertion fails, jsonschema no longer imports it
    and the lever can go."""
    assert _probe(keep_out=False) == ["loaded", "True"]
    assert _probe(keep_out=True) == ["absent", "False"]


GX_PROBE = """
import sys
{keep_out}
import great_expectations.compatibility.google as compat
loaded_with_gx = sorted(m for m in ("google.cloud.bigquery", "google.cloud.secretmanager",
                                    "IPython") if m in sys.modules)
import google.cloud.bigquery  # anything but GX still gets it
print(type(compat.python_bigquery).__name__, type(compat.secretmanager).__name__,
      ",".join(loaded_with_gx) or "-", "google.cloud.bigquery" in sys.modules)
"""


@pytest.mark.probe
def test_great_expectations_is_imported_without_the_cloud_clients_it_would_load():
    """Without the lever GX's compatibility module loads BigQuery's and Secret Manager's clients
    (and, through BigQuery, IPython): 0.65-0.85 s measured. With it GX keeps placeholders and
    none of them is loaded, while any other importer still gets BigQuery. If the first assertion
    fails, GX no longer imports them and the lever can go."""
    assert _probe(keep_out=False, probe=GX_PROBE) == [
        "module", "module", "IPython,google.cloud.bigquery,google.cloud.secretmanager", "True"]
    assert _probe(keep_out=True, probe=GX_PROBE) == ["NotImported", "NotImported", "-", "True"]


BEAM_PROBE = """
import sys
{keep_out}
import apache_beam.io  # imports Beam's BigQuery IO, and with it BigQuery's client
from google.cloud.bigquery import _tqdm_helpers
loaded_with_beam = sorted(m for m in ("tqdm.notebook", "ipywidgets", "IPython")
                          if m in sys.modules)
import tqdm.notebook  # anything but BigQuery's helper still gets it
print("google.cloud.bigquery" in sys.modules, _tqdm_helpers.tqdm_notebook is None,
      ",".join(loaded_with_beam) or "-", "tqdm.notebook" in sys.modules)
"""


@pytest.mark.probe
def test_beam_is_imported_without_the_notebook_bar_bigquerys_client_would_load():
    """Without the lever, Beam's BigQuery IO loads tqdm's notebook bar, ipywidgets and IPython
    through BigQuery's client (0.28-0.4 s measured); with it the client is still there, without
    its notebook bar, and none of the three is loaded, while any other importer still gets the
    bar. If the first assertion fails, the client no longer imports it and the entry can go."""
    assert _probe(keep_out=False, probe=BEAM_PROBE) == [
        "True", "False", "IPython,ipywidgets,tqdm.notebook", "True"]
    assert _probe(keep_out=True, probe=BEAM_PROBE) == ["True", "True", "-", "True"]


TFMA_PROBE = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
{keep_out}
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types
import inspect
inspect.getmodule(print)  # reads every module's __file__, as TensorFlow and GX do in a run
loaded_with_tfma = sorted(m for m in ("sacrebleu", "nltk", "rouge_score") if m in sys.modules)
registered = "Bleu" in metric_types.registered_metrics()
bleu = tfma.metrics.bleu.Bleu()  # first use: the module loads, its metric registers
score = bleu.computations()[0].combiner
print(",".join(loaded_with_tfma) or "-", registered, type(bleu).__name__,
      "sacrebleu" in sys.modules, "Bleu" in metric_types.registered_metrics())
"""


@pytest.mark.probe
def test_tfma_is_imported_without_its_text_metrics_until_one_is_used():
    """Without the lever TFMA's import loads sacrebleu (BLEU) and nltk with rouge_score (ROUGE),
    ~0.25 s measured; with it neither is loaded until a text metric is used (walking the modules
    for their files is not a use), which then works and is registered as before. If the first assertion fails, TFMA no longer imports them and
    the entries can go."""
    assert _probe(keep_out=False, probe=TFMA_PROBE) == [
        "nltk,rouge_score,sacrebleu", "True", "Bleu", "True", "True"]
    assert _probe(keep_out=True, probe=TFMA_PROBE) == ["-", "False", "Bleu", "True", "True"]


BEAM_IO_PROBE = """
import sys
{keep_out}
import apache_beam as beam
loaded_with_beam = sorted(m for m in ("apache_beam.io.gcp.bigquery", "apache_beam.io.gcp.pubsub",
                                      "google.cloud.pubsub") if m in sys.modules)
readers = hasattr(beam.io, "ReadFromText") and hasattr(beam.io, "WriteToTFRecord")
import apache_beam.io.gcp.bigquery as bigquery  # anything but apache_beam.io still gets it
print(",".join(loaded_with_beam) or "-", readers, hasattr(bigquery, "ReadFromBigQuery"))
"""


@pytest.mark.probe
def test_beam_is_imported_without_its_bigquery_and_pubsub_io():
    """Without the lever `import apache_beam` loads Beam's BigQuery and Pub/Sub IO with their
    clients (0.27-0.31 s measured); with it neither is loaded, Beam's file IO is there as
    before, and a module that imports the BigQuery IO itself still gets it. If the first
    assertion fails, Beam no longer imports them and the entry can go."""
    assert _probe(keep_out=False, probe=BEAM_IO_PROBE) == [
        "apache_beam.io.gcp.bigquery,apache_beam.io.gcp.pubsub,google.cloud.pubsub", "True",
        "True"]
    assert _probe(keep_out=True, probe=BEAM_IO_PROBE) == ["-", "True", "True"]


DEFERRED_PROBE = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
{keep_out}
import inspect
import tensorflow_model_analysis as tfma
import tfx.components
import great_expectations
from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl
inspect.getmodule(print)  # reads every module's __file__, as TensorFlow and GX do in a run
loaded = sorted(m for m in ("ipywidgets", "kubernetes", "vl_convert", "altair.vegalite")
                if m in sys.modules)
from tensorflow_model_analysis.view import view_types  # TFMA's own submodule imports
from tfx.components.infra_validator.model_server_runners import kubernetes_runner
used = (callable(tfma.view.render_slicing_metrics), kubernetes_runner.KubernetesRunner.__name__,
        kl.alt.Chart.__name__)  # first uses: each module runs
print(",".join(loaded) or "-", view_types.EvalResult.__name__, *used,
      all(m in sys.modules for m in ("ipywidgets", "kubernetes", "altair.vegalite")))
"""


@pytest.mark.probe
def test_notebook_views_kubernetes_and_altair_load_when_used():
    """Without the lever TFMA's notebook views (ipywidgets), TFX's Kubernetes runner (the
    Kubernetes client) and altair (GX's KL-divergence charts) load with their importers; with
    it none loads until a name is asked of it, which then works. TFMA's imports of the view
    package's own submodules load them as before. If the first assertion fails, an importer
    stopped importing one and its entry can go."""
    assert _probe(keep_out=False, probe=DEFERRED_PROBE) == [
        "altair.vegalite,ipywidgets,kubernetes", "EvalResult", "True", "KubernetesRunner",
        "Chart", "True"]
    assert _probe(keep_out=True, probe=DEFERRED_PROBE) == [
        "-", "EvalResult", "True", "KubernetesRunner", "Chart", "True"]


def test_a_submodule_of_a_deferred_package_imports_without_running_the_package(tmp_path,
                                                                                 monkeypatch):
    """`from package import submodule` asks the package for the name before importing the
    submodule: that is not a use. Any other name is."""
    from pipeline.cli import unused_imports

    package = tmp_path / "deferred_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("import builtins\nbuiltins.PACKAGE_RAN = True\n"
                                         "VALUE = 42\n")
    (package / "sub.py").write_text("NAME = 'sub'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(unused_imports, "DEFERRED", ("deferred_pkg",))
    finder = unused_imports._Deferred()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    import builtins

    monkeypatch.setattr(builtins, "PACKAGE_RAN", False, raising=False)
    try:
        from deferred_pkg import sub

        assert sub.NAME == "sub"
        assert builtins.PACKAGE_RAN is False
        import deferred_pkg

        assert deferred_pkg.VALUE == 42  # a use: the package runs
        assert builtins.PACKAGE_RAN is True
    finally:
        for name in ("deferred_pkg", "deferred_pkg.sub"):
            sys.modules.pop(name, None)


RUN_PROBE = """
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
{keep_out}
# What the pipeline's builder imports, then a Beam pipeline on the DirectRunner, as every
# stage runs one.
from tfx.components.trainer.component import Trainer
from tfx.components.statistics_gen.component import StatisticsGen
import tensorflow_data_validation as tfdv
import apache_beam as beam
with beam.Pipeline() as pipeline:
    _ = pipeline | beam.Create([1, 2]) | beam.Map(lambda x: x + 1)
loaded = sorted(m for m in ("keras_tuner", "keras", "prompt_toolkit", "IPython.terminal",
                            "google.pubsub_v1") if m in sys.modules)
import IPython
from IPython.display import HTML  # TFDV's notebook views' import, as before
import tfx.components
from google.cloud import pubsub
used = (IPython.get_ipython(), tfx.components.Tuner.__name__,  # first uses: each module runs
        pubsub.PublisherClient.__name__)
print(",".join(loaded) or "-", HTML("x").data, *used,
      all(m in sys.modules for m in ("keras_tuner", "google.pubsub_v1")))
"""


@pytest.mark.probe
def test_a_run_imports_neither_every_tfx_component_nor_ipython_nor_the_pubsub_client():
    """Without the levers, importing one TFX component runs `tfx.components`' init, which loads
    KerasTuner and Keras 3 for the Tuner (0.4-0.6 s with the next one), TFDV loads IPython's
    shell for its notebook views, and Beam's DirectRunner the Pub/Sub client. With them none of
    those loads, and each works when first used (IPython, never started, has no shell). If the
    first assertion fails, an importer stopped importing one and its entry can go."""
    assert _probe(keep_out=False, probe=RUN_PROBE) == [
        "IPython.terminal,google.pubsub_v1,keras,keras_tuner,prompt_toolkit", "x", "None",
        "Tuner", "PublisherClient", "True"]
    assert _probe(keep_out=True, probe=RUN_PROBE) == [
        "-", "x", "None", "Tuner", "PublisherClient", "True"]
