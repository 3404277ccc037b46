"""What each stage runs inside, in this process (its Beam pipeline, and the transform graph its
Trainer loads): `make pipeline`, `make score` and each orchestrated stage (local_dag.py,
single_node.py) wrap their TFX launch in this one block. Each lever is measured in its own
module."""
from __future__ import annotations

import contextlib
from typing import Iterator

from pipeline.config.settings import Settings


@contextlib.contextmanager
def levers_for_beam(settings: Settings) -> Iterator[None]:
    from pipeline.runners.beam_bundle_descriptors import stage_pcollections_only
    from pipeline.runners.beam_dofn_specs import dofn_specs_read_once
    from pipeline.runners.beam_option_views import views_made_once
    from pipeline.runners.beam_packaging import no_tfx_package_for_local_workers
    from pipeline.runners.beam_pickling import compressed_once, submodules_listed_once
    from pipeline.runners.beam_state_cache import weighing_without_module_scan
    from pipeline.runners.beam_state_sampler import prompt_state_sampler
    from pipeline.runners.tf_data_functions import data_functions_unoptimized
    from pipeline.runners.transform_inspection import inspected_once
    from pipeline.runners.transform_sources import sources_walked_once

    with no_tfx_package_for_local_workers(settings), weighing_without_module_scan(), \
            dofn_specs_read_once(), views_made_once(), inspected_once(), \
            submodules_listed_once(), compressed_once(in_process=_pickles_stay_here(settings)), \
            stage_pcollections_only(), sources_walked_once(), prompt_state_sampler(), \
            data_functions_unoptimized():
        yield


def _pickles_stay_here(settings: Settings) -> bool:
    """Whether every Beam pickle made in the block is read back in this process: the
    DirectRunner running its workers as threads (in_memory, multi_threading), read from the
    arguments Beam gets (a --beam-arg may choose another mode). Its multi_processing workers and
    a cluster's read them elsewhere, with Beam's own bz2."""
    from apache_beam.options.pipeline_options import (
        DirectOptions,
        PipelineOptions,
        StandardOptions,
    )

    try:
        options = PipelineOptions(settings.beam_pipeline_args())
    except ValueError:  # settings a run refuses anyway (a cluster runner without its master)
        return False
    return options.view_as(StandardOptions).runner in (None, "DirectRunner") and \
        options.view_as(DirectOptions).direct_running_mode in ("in_memory", "multi_threading")
