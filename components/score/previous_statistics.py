"""Baseline for drift between data drops: the statistics of the last successful run's data.

The Resolver takes this run's statistics as an input (`statistics`), so it runs after this run's
StatisticsGen on every orchestrator, and `baseline` (every ExampleStatistics of the pipeline).
It returns, as `baseline`, the StatisticsGen output of the newest run whose last stage
(`final_node`, the Pusher) finished, ran or cached: a failed run, or one stopped by a gate, is
never the baseline. The current run has not finished, so it is never its own baseline.

When that run's statistics are this run's (StatisticsGen came from cache: the same data), it
returns nothing, and DistributionValidator compares nothing. So an unchanged re-run keeps the
drift stages' inputs of the run before it and stays fully cached, and a first run has no
baseline either.
"""
from typing import Dict, List, Optional

from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common.resolver import ResolverStrategy

STATISTICS, BASELINE = "statistics", "baseline"
_DONE = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
_OUTPUT = metadata_store_pb2.Event.OUTPUT


def last_successful_statistics(store, pipeline_name: str, statistics_node: str,
                               final_node: str) -> Optional[int]:
    """Id of the statistics artifact of the newest run whose final node finished, or None."""
    final = store.get_context_by_type_and_name("node", f"{pipeline_name}.{final_node}")
    stats_node = store.get_context_by_type_and_name("node", f"{pipeline_name}.{statistics_node}")
    if final is None or stats_node is None:
        return None
    stats_executions = {e.id: e for e in store.get_executions_by_context(stats_node.id)
                        if e.last_known_state in _DONE}
    finished = sorted((e for e in store.get_executions_by_context(final.id)
                       if e.last_known_state in _DONE), key=lambda e: e.id, reverse=True)
    for execution in finished:
        for run in store.get_contexts_by_execution(execution.id):
            if run.type != "pipeline_run":
                continue
            in_run = [e.id for e in store.get_executions_by_context(run.id)
                      if e.id in stats_executions]
            events = [e for e in store.get_events_by_execution_ids(in_run) if e.type == _OUTPUT]
            if events:
                return max(events, key=lambda e: e.execution_id).artifact_id
    return None


class PreviousRunStatisticsStrategy(ResolverStrategy):
    """See the module docstring. Config: pipeline_name, statistics_node, final_node."""

    def __init__(self, pipeline_name: str, statistics_node: str, final_node: str):
        self._pipeline_name = pipeline_name
        self._statistics_node = statistics_node
        self._final_node = final_node

    def resolve_artifacts(
        self, store, input_dict: Dict[str, List[types.Artifact]]
    ) -> Optional[Dict[str, List[types.Artifact]]]:
        current = {a.id for a in input_dict.get(STATISTICS, [])}
        result: Dict[str, List[types.Artifact]] = {STATISTICS: input_dict.get(STATISTICS, []),
                                                   BASELINE: []}
        baseline = last_successful_statistics(store, self._pipeline_name,
                                              self._statistics_node, self._final_node)
        if baseline is None or baseline in current:
            return result
        result[BASELINE] = [a for a in input_dict.get(BASELINE, []) if a.id == baseline]
        return result
