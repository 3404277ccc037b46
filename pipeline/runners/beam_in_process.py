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
    from pipeline.runners.transform_inspection import inspected_once
    from pipeline.runners.transform_sources import sources_walked_once

    with no_tfx_package_for_local_workers(settings), weighing_without_module_scan(), \
            dofn_specs_read_once(), views_made_once(), inspected_once(), \
            submodules_listed_once(), compressed_once(), stage_pcollections_only(), \
            sources_walked_once(), prompt_state_sampler():
        yield
