"""Keep TFX from packing itself for Beam workers that already run this virtualenv.

Before every Beam stage (CsvExampleGen, StatisticsGen, Transform, Evaluator), TFX's
BaseBeamExecutor calls tfx.utils.dependency_utils.make_beam_dependency_flags unless the Beam
args already name a package or an image. That copies the installed tfx package (~50 MB) into a
new temp folder, runs `setup.py sdist` there (~2 s) and adds the tarball as --extra_package, for
remote workers to install. The DirectRunner's workers are this machine's processes and never
install staged packages, and TFX never deletes the folders: ~200 MB left in /tmp per run. Nor do
the workers of a Beam worker pool (`--environment_type=EXTERNAL`, `make flink`): the pool starts
them without Beam's boot step, which is what installs staged packages. Cluster runners with Docker
workers get an image in their Beam args (pipeline/config/settings.py), which TFX's check honours.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from pipeline.config.settings import Settings


@contextlib.contextmanager
def no_tfx_package_for_local_workers(settings: Settings) -> Iterator[None]:
    """Within the block, Beam stages on the DirectRunner, or on a cluster whose workers come
    from a Beam worker pool (`--beam-environment external`, e.g. `make flink`), run without
    TFX's ephemeral package."""
    local_workers = settings.beam_runner == "DirectRunner" or (
        settings.beam_runner in ("FlinkRunner", "SparkRunner")
        and settings.resolved_beam_environment() == "external")
    if not local_workers:
        yield
        return
    from tfx.utils import dependency_utils

    original = dependency_utils.make_beam_dependency_flags
    # BaseBeamExecutor looks the function up on the module at each call, so this reaches it.
    dependency_utils.make_beam_dependency_flags = list
    try:
        yield
    finally:
        dependency_utils.make_beam_dependency_flags = original
