"""The champion model's place in ML Metadata: its Model artifact and the statistics of the data
it was trained on, found through lineage.

The registry says which model is champion (pipeline/tracking/registry.py: the `champion` alias of
the registered model, whose version is tagged with the TFX Model artifact's uri). ML Metadata
says where that model came from: the Trainer execution that produced it, the pipeline run it
belonged to, and that run's StatisticsGen output, the statistics of the very examples the model
was trained on. The scoring pipeline imports both artifacts (TFX Importer nodes find them in the
store by uri, so their lineage stays connected).
"""
from __future__ import annotations

import dataclasses

from ml_metadata.proto import metadata_store_pb2

_OUTPUT = metadata_store_pb2.Event.OUTPUT


class ChampionNotFound(LookupError):
    """No champion to score with, or its training run is not in this ML Metadata store."""


@dataclasses.dataclass(frozen=True)
class Champion:
    name: str  # registered model name
    version: str  # registered model version holding the `champion` alias
    model_uri: str  # the TFX Model artifact (Trainer output)
    statistics_uri: str  # StatisticsGen output of the run that trained it
    training_run: str  # that TFX pipeline run id

    def describe(self) -> str:
        return f"{self.name} version {self.version} (trained in run {self.training_run})"


def training_statistics(store, pipeline_name: str, model_uri: str, statistics_node: str
                        ) -> tuple[str, str]:
    """(statistics uri, pipeline run id) of the run whose Trainer produced the model at
    model_uri; ChampionNotFound when the store does not know it."""
    models = [a for a in store.get_artifacts_by_uri(model_uri)]
    if not models:
        raise ChampionNotFound(f"the champion's model {model_uri} is not in this pipeline's ML "
                               "Metadata store")
    events = [e for e in store.get_events_by_artifact_ids([a.id for a in models])
              if e.type == _OUTPUT]
    stats_ctx = store.get_context_by_type_and_name("node", f"{pipeline_name}.{statistics_node}")
    stats_executions = {e.id for e in store.get_executions_by_context(stats_ctx.id)} \
        if stats_ctx else set()
    # The producing Trainer first (its run trained the model), then runs that reused it.
    for event in sorted(events, key=lambda e: e.execution_id):
        for run in store.get_contexts_by_execution(event.execution_id):
            if run.type != "pipeline_run":
                continue
            in_run = [e.id for e in store.get_executions_by_context(run.id)
                      if e.id in stats_executions]
            outputs = [e for e in store.get_events_by_execution_ids(in_run) if e.type == _OUTPUT]
            if outputs:
                artifact = store.get_artifacts_by_id([outputs[-1].artifact_id])[0]
                return artifact.uri, run.name
    raise ChampionNotFound(f"no statistics of the run that trained {model_uri} in this "
                           "pipeline's ML Metadata store")
