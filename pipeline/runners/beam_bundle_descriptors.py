"""Beam's in-process runner describes each stage with only the PCollections its transforms use.

Beam 2.59's FnApiRunner builds one ProcessBundleDescriptor per fused stage
(`BundleContextManager._build_process_bundle_descriptor` in
apache_beam/runners/portability/fn_api_runner/execution.py) and copies into it every PCollection
of the whole pipeline; the SDK worker then parses and registers each descriptor. Both grow with
the pipeline, so the run grows with its square: tf.Transform builds a few stages and
PCollections per vocabulary, and a table of 150 small-integer columns (150 vocabularies, 500
rows) spent 85 s in its Transform, 10 s of it in these copies and their parsing, measured with
py-spy; 674 such columns ran for over 7 minutes and took 19.8 GB.

Within the block the descriptor holds the PCollections the stage's transforms read or write (a
side input is an input too), which is all the worker looks up; coders, windowing strategies and
environments are copied whole as before (a transform's payload names coders the PCollections do
not: its data ports', its state's and timers').
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from pipeline.runners.module_attribute import replaced

_EXECUTION = "apache_beam.runners.portability.fn_api_runner.execution"


def _stage_descriptor(self):
    """BundleContextManager._build_process_bundle_descriptor (Beam 2.59) with the stage's own
    PCollections only."""
    from apache_beam.portability.api import beam_fn_api_pb2

    components = self.execution_context.pipeline_components
    transforms = {transform.unique_name: transform for transform in self.stage.transforms}
    used = {pcollection for transform in transforms.values()
            for pcollection in (*transform.inputs.values(), *transform.outputs.values())}
    return beam_fn_api_pb2.ProcessBundleDescriptor(
        id=self.bundle_uid,
        transforms=transforms,
        pcollections={name: components.pcollections[name] for name in used
                      if name in components.pcollections},
        coders=dict(components.coders.items()),
        windowing_strategies=dict(components.windowing_strategies.items()),
        environments=dict(components.environments.items()),
        state_api_service_descriptor=self.state_api_service_descriptor(),
        timer_api_service_descriptor=self.data_api_service_descriptor())


@contextlib.contextmanager
def stage_pcollections_only() -> Iterator[None]:
    with replaced(_EXECUTION, "BundleContextManager._build_process_bundle_descriptor",
                  _stage_descriptor):
        yield
