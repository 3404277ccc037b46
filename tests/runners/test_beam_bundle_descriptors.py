"""pipeline/runners/beam_bundle_descriptors.py: each stage's descriptor holds the PCollections
its transforms use, and pipelines compute what they computed (a side input, a combine, a
group-by-key, a file sink), on Beam's in-process runner as the stages run it."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import execution

from pipeline.runners import beam_bundle_descriptors


@pytest.mark.e2e  # runs a Beam pipeline
def test_a_pipeline_computes_the_same_with_each_stage_described_by_its_own_pcollections(
        tmp_path, monkeypatch):
    sizes = []
    stage_descriptor = beam_bundle_descriptors._stage_descriptor

    def recording(self):
        descriptor = stage_descriptor(self)
        total = len(self.execution_context.pipeline_components.pcollections)
        sizes.append((len(descriptor.pcollections), total))
        return descriptor

    monkeypatch.setattr(beam_bundle_descriptors, "_stage_descriptor", recording)

    def run(folder):
        options = PipelineOptions(runner="DirectRunner", direct_running_mode="in_memory")
        with beam.Pipeline(options=options) as p:
            numbers = p | "numbers" >> beam.Create(range(100))
            offset = p | "offset" >> beam.Create([1000])
            shifted = numbers | beam.Map(lambda x, add: x + add[0],
                                         add=beam.pvalue.AsList(offset))
            total = shifted | beam.CombineGlobally(sum)
            grouped = (shifted | beam.Map(lambda x: (x % 3, x)) | beam.GroupByKey()
                       | beam.MapTuple(lambda k, xs: f"{k}:{sum(xs)}"))
            (total | beam.Map(str)) | "total" >> beam.io.WriteToText(str(folder / "total"))
            grouped | "groups" >> beam.io.WriteToText(str(folder / "groups"))

    def read(folder, name):
        return sorted(line for f in folder.glob(f"{name}*") for line in f.read_text().split())

    run(tmp_path / "as_beam")
    assert sizes == []  # outside the block: Beam's own descriptors
    with beam_bundle_descriptors.stage_pcollections_only():
        run(tmp_path / "lever")
    assert execution.BundleContextManager._build_process_bundle_descriptor is not recording
    for name in ("total", "groups"):
        assert read(tmp_path / "lever", name) == read(tmp_path / "as_beam", name)
    assert read(tmp_path / "lever", "total") == [str(sum(range(100)) + 100 * 1000)]
    assert sizes and all(used <= total for used, total in sizes)
    assert any(used < total for used, total in sizes)
