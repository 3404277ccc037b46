"""The third-party internals the code relies on, checked against the installed versions.

docs/upgrading.md lists every private name, patched function and relied-on behaviour of TFX,
TFMA, TensorFlow, KerasTuner, Great Expectations, MLflow and uvicorn, with the test that fails
when an upgrade breaks it. This file holds the checks no other fast test makes: each asserts
that a name is still there with the signature the code calls it with, or that a behaviour still
holds, so that an upgrade fails here, by name, instead of somewhere in a pipeline run. A failure
means: read the entry in docs/upgrading.md, then the code it names.

No pipeline runs; every import happens inside its test.
"""
from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest

# tf.Transform and TFMA need Keras 2 (as tests/conftest.py sets for every test).
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


# ---- TFX: compiling and running a pipeline ---------------------------------------------------

def test_tfx_compiles_a_pipeline_with_its_private_make_pipeline_proto():
    """pipeline/runners/local_dag.py:_pipeline_ir, single_node.py:compile_ir."""
    from tfx.orchestration.portable import tfx_runner

    assert _parameters(tfx_runner._make_pipeline_proto) == ["pipeline"]  # noqa: SLF001


def test_tfx_turns_run_options_into_a_partial_run_with_its_private_run_opts_to_proto():
    """pipeline/runners/local_dag.py:_run_options (--until)."""
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.orchestration.pipeline import RunOptions
    from tfx.orchestration.portable.tfx_runner import _run_opts_to_proto

    proto = _run_opts_to_proto(RunOptions(to_nodes=["Transform"]))
    assert list(proto.partial_run.to_nodes) == ["Transform"]
    assert _parameters(LocalDagRunner.run_with_ir)[:3] == ["self", "pipeline", "run_options"]


def test_the_run_id_is_a_runtime_parameter_set_by_name():
    """pipeline/runners/local_dag.py:_pipeline_ir and single_node.py:_launch set the TFX run id
    before TFX starts."""
    from tfx.dsl.compiler import constants
    from tfx.orchestration.portable import runtime_parameter_utils

    assert constants.PIPELINE_RUN_ID_PARAMETER_NAME == "pipeline-run-id"
    assert _parameters(runtime_parameter_utils.substitute_runtime_parameter) == [
        "msg", "parameter_bindings"]


def test_one_node_is_launched_with_tfxs_local_runner_utils_and_launcher():
    """pipeline/runners/single_node.py:_launch (each Airflow task) does what LocalDagRunner does
    for one node, with the same internal helpers."""
    from tfx.orchestration.local import local_dag_runner, runner_utils
    from tfx.orchestration.portable import launcher

    for name in ("extract_local_deployment_config", "extract_executor_spec",
                 "extract_custom_driver_spec"):
        assert callable(getattr(runner_utils, name)), name
    assert _parameters(launcher.Launcher.__init__)[:7] == [
        "self", "pipeline_node", "mlmd_connection", "pipeline_info", "pipeline_runtime_spec",
        "executor_spec", "custom_driver_spec"]
    # The launch returns an execution info with the execution's id, or None.
    assert "execution_id" in inspect.getsource(launcher.Launcher.launch)
    assert "component_launcher.launch()" in inspect.getsource(local_dag_runner)


def test_the_checks_runner_does_what_local_dag_runner_does_for_each_node():
    """pipeline/runners/check_branch.py runs the IR's nodes itself (the checks in a forked
    child) with LocalDagRunner.run_with_ir's steps: the partial run marked, skipped nodes left
    out, the snapshot where a node asks for one, one Launcher per node with its own ML Metadata
    connection, and the log lines around each launch."""
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.runners import check_branch

    theirs = inspect.getsource(LocalDagRunner.run_with_ir)
    ours = inspect.getsource(check_branch).replace('"', "'").replace(
        "self.connection_config", "connection_config")
    for step in ("partial_run_utils.mark_pipeline(", "execution_options.HasField('skip')",
                 "execution_options.run.perform_snapshot", "partial_run_utils.snapshot(",
                 "mlmd_connection=metadata.Metadata(connection_config)",
                 "runner_utils.extract_executor_spec(", "runner_utils.extract_custom_driver_spec(",
                 "component_launcher.launch()", "logging.info('Component %s is running.'",
                 "logging.info('Component %s is finished.'"):
        assert step in theirs and step in ours, step
    # Nothing else in the loop: a new step in TFX's would need a copy here.
    assert theirs.count("component_launcher") == 2 and theirs.count("launcher.Launcher(") == 1


def test_local_dag_runner_logs_the_lines_the_live_summary_reads():
    """pipeline/console/stage_summary.py:StageReporter.emit turns LocalDagRunner's absl INFO lines
    'Component <id> is running.' / '... is finished.' into the summary."""
    from tfx.orchestration.local import local_dag_runner

    from pipeline.console import stage_summary

    source = inspect.getsource(local_dag_runner)
    assert re.search(r"^from absl import logging$", source, re.MULTILINE)
    formats = re.findall(r"logging\.info\('(Component %s is \w+\.)', node_id\)", source)
    assert sorted(f.replace("%s", "Trainer") for f in formats) == [
        "Component Trainer is finished.", "Component Trainer is running."]
    for line in formats:
        assert stage_summary._EVENT.match(line.replace("%s", "Trainer"))  # noqa: SLF001


def test_ml_metadata_contexts_are_named_as_the_queries_read_them():
    """pipeline/mlmd/queries.py finds a node's executions in the context "<pipeline>.<node>" of
    type "node", a run's in the "pipeline_run" context named by the run id."""
    from tfx.dsl.compiler import compiler_utils, constants

    assert constants.PIPELINE_CONTEXT_TYPE_NAME == "pipeline"
    assert constants.PIPELINE_RUN_CONTEXT_TYPE_NAME == "pipeline_run"
    assert constants.NODE_CONTEXT_TYPE_NAME == "node"
    assert compiler_utils.node_context_name("csv2model-taxi", "Trainer") == "csv2model-taxi.Trainer"


def test_a_model_blessing_carries_the_properties_the_baseline_strategy_reads():
    """components/evaluate/baseline_strategy.py reads TFX's Evaluator's custom properties."""
    from tfx.components.evaluator import constants
    from tfx.dsl.components.common.resolver import ResolverStrategy

    from components.evaluate import baseline_strategy

    assert constants.ARTIFACT_PROPERTY_BLESSED_KEY == "blessed"
    assert constants.ARTIFACT_PROPERTY_CURRENT_MODEL_ID_KEY == "current_model_id"
    assert _parameters(ResolverStrategy.resolve_artifacts) == ["self", "store", "input_dict"]
    source = inspect.getsource(baseline_strategy)
    assert '"current_model_id"' in source and '"blessed"' in source


def test_the_evaluator_calls_the_module_hooks_by_name_and_keywords():
    """components/evaluate/evaluator_module.py: custom_extractors and custom_eval_shared_model
    are looked up in the Evaluator's module_path and called with these keywords."""
    from tfx.components.evaluator import executor
    from tfx.components.util import udf_utils

    from components.evaluate import evaluator_module

    properties = {"module_path": "components.evaluate.evaluator_module"}
    for name in ("custom_extractors", "custom_eval_shared_model"):
        assert udf_utils.try_get_fn(exec_properties=properties, fn_name=name) is getattr(
            evaluator_module, name)
    source = inspect.getsource(executor)
    assert re.search(r"custom_extractors\(\s*eval_shared_model=eval_shared_model,\s*"
                     r"eval_config=eval_config,\s*tensor_adapter_config=tensor_adapter_config\)",
                     source)
    assert re.search(r"eval_shared_model_fn\(\s*eval_saved_model_path=model_path,\s*"
                     r"model_name=model_spec.name,\s*eval_config=eval_config,", source)


def test_the_tuner_executor_is_built_from_tfxs_module_functions():
    """components/train/tuner_search.py:TrialRecordingExecutor.Do calls TFX's Tuner executor's
    module-level steps and BaseExecutor's private _get_tmp_dir."""
    from tfx.components.tuner import executor as tuner_executor
    from tfx.dsl.components.base.base_executor import BaseExecutor

    assert _parameters(tuner_executor.search)[:3] == ["input_dict", "exec_properties",
                                                      "working_dir"]
    assert _parameters(tuner_executor.get_tune_args) == ["exec_properties"]
    assert _parameters(tuner_executor.write_best_hyperparameters) == ["tuner", "output_dict"]
    assert _parameters(BaseExecutor._get_tmp_dir) == ["self"]  # noqa: SLF001


def test_keras_tuner_trials_run_through_run_trial():
    """components/train/tuner_search.py:TfKerasTrials overrides run_trial and returns the best
    epoch's metrics; Hyperband passes its epochs as the "tuner/epochs" hyperparameter."""
    import keras_tuner
    from keras_tuner.src.tuners import hyperband

    assert _parameters(keras_tuner.Tuner.run_trial) == ["self", "trial", "args", "kwargs"]
    assert "tuner/epochs" in inspect.getsource(hyperband)
    for search in (keras_tuner.BayesianOptimization, keras_tuner.Hyperband,
                   keras_tuner.RandomSearch):
        assert issubclass(search, keras_tuner.Tuner)


def test_example_gen_output_is_named_as_tfx_names_it():
    """components/ingest/range_writer.py writes ExampleGen's files under TFX's name."""
    from tfx.components.example_gen import write_split

    from components.ingest import range_writer

    assert range_writer.FILE_PREFIX == write_split.DEFAULT_TF_RECORD_FILE_NAME


def test_statistics_gen_gets_its_reader_from_tfxio_utils():
    """components/ingest/statistics_gen.py swaps tfxio_utils.get_split_tfxio while TFX's
    StatisticsGen executor runs, and reads TFExampleRecord's file pattern."""
    from tfx.components.statistics_gen import executor
    from tfx.components.util import tfxio_utils
    from tfx_bsl.tfxio import tf_example_record

    assert "tfxio_utils.get_split_tfxio(" in inspect.getsource(executor.Executor.Do)
    assert _parameters(tfxio_utils.get_split_tfxio)[:4] == [
        "examples", "split", "telemetry_descriptors", "schema"]
    record = tf_example_record.TFExampleRecord(file_pattern="/x/*", telemetry_descriptors=["t"])
    assert record._file_pattern == ["/x/*"]  # noqa: SLF001


def test_beams_state_cache_weighs_values_through_its_module_function():
    """pipeline/runners/beam_state_cache.py replaces statecache.get_deep_size for the run and
    repeats its objsize call with exclude_modules_globals=False: StateCache must look the
    function up on the module, and Beam's call must still be objsize's with these three
    functions (else the copy no longer weighs as Beam does)."""
    import objsize
    from apache_beam.runners.portability.fn_api_runner import worker_handlers
    from apache_beam.runners.worker import statecache

    assert "weight = get_deep_size(value)" in inspect.getsource(statecache.StateCache.get)
    source = inspect.getsource(statecache.get_deep_size)
    for name in ("objsize.get_deep_size(", "get_size_func=_size_func",
                 "get_referents_func=_get_referents_func", "filter_func=_filter_func"):
        assert name in source
    assert "exclude_modules_globals" in _parameters(objsize.get_deep_size)
    # The in-process worker's cache is on, so its weighing runs in every local run.
    assert "StateCache(STATE_CACHE_SIZE_MB * MB_TO_BYTES)" in inspect.getsource(
        worker_handlers.EmbeddedWorkerHandler.__init__)


def test_beams_bundle_processor_makes_its_state_sampler_through_the_module():
    """pipeline/runners/beam_state_sampler.py replaces statesampler.StateSampler for the run with
    a subclass whose period defaults to 10 ms: BundleProcessor must look the class up on the
    module and leave the period to its default, and the class must still take it third."""
    from apache_beam.runners.worker import bundle_processor, statesampler

    source = inspect.getsource(bundle_processor.BundleProcessor.__init__)
    assert "statesampler.StateSampler(" in source
    assert "sampling_period_ms" not in source
    assert _parameters(statesampler.StateSampler.__init__)[:4] == [
        "self", "prefix", "counter_factory", "sampling_period_ms"]
    assert statesampler.DEFAULT_SAMPLING_PERIOD_MS == 200


def test_beams_dofn_specs_are_the_loop_beam_dofn_specs_copies_and_looked_up_per_call():
    """pipeline/runners/beam_dofn_specs.py copies userstate.get_dofn_specs with each method's
    defaults read once per function: Beam's function must still be that loop over MethodWrapper
    defaults, a method's arguments must come from its function unless the instance has an
    `_inspect_<name>` hook, and Beam's callers must look the function up on `userstate`."""
    from apache_beam.runners import common
    from apache_beam.transforms import core, userstate

    source = inspect.getsource(userstate.get_dofn_specs)
    for line in ("for method_name in dir(dofn):",
                 "if not isinstance(getattr(dofn, method_name, None), types.MethodType):",
                 "method = MethodWrapper(dofn, method_name)",
                 "d.param_id for d in method.defaults if isinstance(d, _DoFnParam)",
                 "if isinstance(d, _StateDoFnParam):", "elif isinstance(d, _TimerDoFnParam):"):
        assert line in source, line
    arguments = inspect.getsource(core.get_function_arguments)
    assert "func_name = '_inspect_%s' % func" in arguments
    assert "return get_function_args_defaults(f)" in arguments
    # runners/common.py is compiled with Cython: its source is read from the file beside it.
    common_source = Path(common.__file__).with_name("common.py").read_text()
    assert "self.args, self.defaults = core.get_function_arguments(obj_to_invoke," \
        in common_source
    assert "userstate.is_stateful_dofn(do_fn)" in common_source
    for function in (userstate.is_stateful_dofn, userstate.validate_stateful_dofn):
        assert "= get_dofn_specs(dofn)" in inspect.getsource(function)
    assert "userstate.get_dofn_specs(self.fn)" in inspect.getsource(core.ParDo)


def test_tfxs_transform_asks_tft_for_the_input_columns_through_the_module():
    """pipeline/runners/transform_inspection.py replaces tft.get_analyze_input_columns,
    tft.get_transform_input_columns and the analysis cache-entry question for the run and lets
    them share one trace: TFX's executor must look them up on their modules at each call, ask
    the column questions before the cache-entry one, and tf.Transform must trace through
    impl_helper's module function."""
    from tensorflow_transform import inspect_preprocessing_fn
    from tfx.components.transform import executor

    source = inspect.getsource(executor.TransformProcessor)
    assert source.count("tft.get_analyze_input_columns(") == 2
    assert source.count("tft.get_transform_input_columns(") == 1
    for function in (inspect_preprocessing_fn.get_analyze_input_columns,
                     inspect_preprocessing_fn.get_transform_input_columns):
        assert "impl_helper.trace_preprocessing_function(" in inspect.getsource(function)
    # The cache-entry question: asked through the builder module, after the column questions,
    # from a trace of its own that it then changes.
    from tensorflow_transform.beam import analysis_graph_builder

    assert "tft_beam.analysis_graph_builder.get_analysis_cache_entry_keys(" in \
        inspect.getsource(executor.TransformProcessor._OptimizeRun.expand)
    run = inspect.getsource(executor.TransformProcessor._RunBeamImpl)
    assert run.index("tft.get_transform_input_columns(") < run.index("self._OptimizeRun(")
    assert "impl_helper.trace_preprocessing_function(" in inspect.getsource(
        analysis_graph_builder._build_analysis_graph_for_inspection)  # noqa: SLF001


def test_tfts_loader_maps_outputs_to_inputs_through_its_module_functions():
    """pipeline/runners/transform_sources.py replaces saved_transform_io_v2's
    _get_output_to_inputs_map and graph_tools.retrieve_sources for the run: the loader must call
    the map by its module name and read it as {output name: ObjectIdentitySet}, and the map
    must still be one retrieve_sources walk per output, control dependencies ignored, over the
    components _get_component_tensors and _as_operation give."""
    from tensorflow_transform import graph_tools
    from tensorflow_transform.saved import saved_transform_io_v2 as io

    loader = inspect.getsource(io.SavedModelLoader.__init__)
    assert "_get_output_to_inputs_map(structured_outputs)" in loader
    assert "self._output_to_inputs_map[name].difference(feeds)" in inspect.getsource(
        io.SavedModelLoader._get_fetches)  # noqa: SLF001
    walk = inspect.getsource(io._get_output_to_inputs_map)  # noqa: SLF001
    for step in ("_get_component_tensors(output)", "_as_operation(component)",
                 "graph_tools.retrieve_sources(", "ignore_control_dependencies=True"):
        assert step in walk
    assert _parameters(graph_tools.retrieve_sources) == ["sinks", "ignore_control_dependencies"]
    assert "retrieve_sources(sinks, ignore_control_dependencies=True)" in inspect.getsource(
        graph_tools._retrieve_source_keys)  # noqa: SLF001
    # get_dependent_inputs: the module function, called through the module by the Transform,
    # is still one analyzer's sources per output, then a scan of the inputs.
    from tensorflow_transform import inspect_preprocessing_fn
    from tensorflow_transform.beam import impl

    assert "graph_tools.get_dependent_inputs(" in inspect.getsource(impl)
    assert "graph_tools.get_dependent_inputs(" in inspect.getsource(inspect_preprocessing_fn)
    module_walk = inspect.getsource(graph_tools.get_dependent_inputs)
    for step in ("_QuietInitializableGraphAnalyzer(graph, input_tensors,",
                 "graph_analyzer.get_dependent_inputs(output_tensor)", "if name in dependent_inputs"):
        assert step in module_walk
    tools = inspect.getsource(graph_tools)
    assert "self._graph_analyzer.analyze_tensor(component).dependent_sources" in tools
    assert "  @_reraise_unexpected_error\n  def get_dependent_inputs(self, tensor_or_op):" in tools


def test_gx_rebuilds_an_expectations_configuration_at_each_look():
    """components/contract/gx_configurations.py returns the configuration built at the first look
    for the length of a batch's validation: GX's property must still be a rebuild from the
    expectation's fields (nothing cached to go stale), defined on Expectation alone, and the
    keyword-argument helpers must still read it once per key."""
    from great_expectations.expectations import expectation

    prop = expectation.Expectation.__dict__["configuration"]
    assert isinstance(prop, property) and prop.fset is None
    source = inspect.getsource(prop.fget)
    assert "kwargs = self.dict(exclude_defaults=True)" in source
    assert "return ExpectationConfiguration(" in source
    helpers = inspect.getsource(expectation.Expectation._get_success_kwargs)  # noqa: SLF001
    assert "self.configuration.kwargs.get(key" in helpers
    overriding = [cls.__name__ for cls in _subclasses(expectation.Expectation)
                  if "configuration" in cls.__dict__]
    assert overriding == []


def _subclasses(cls) -> list:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_cloudpickle_looks_its_submodule_search_up_as_a_global_of_cloudpickle_fast():
    """pipeline/runners/beam_pickling.py replaces cloudpickle_fast._find_imported_submodules for
    the run: Beam must pickle with the cloudpickle package, whose function state must call the
    search by that global name, and the search must still be the scan it reimplements."""
    from apache_beam.internal import cloudpickle_pickler
    from cloudpickle import cloudpickle, cloudpickle_fast

    assert "import cloudpickle" in inspect.getsource(cloudpickle_pickler)
    assert "_find_imported_submodules(" in inspect.getsource(cloudpickle_fast._function_getstate)
    # ... and its payloads go through its module's `bz2` (beam_pickling.compressed_once).
    pickler_source = inspect.getsource(cloudpickle_pickler)
    assert "c = bz2.compress(s, compresslevel=9)" in pickler_source
    assert "s = bz2.decompress(c)" in pickler_source
    search = inspect.getsource(cloudpickle._find_imported_submodules)
    for step in ("for name in list(sys.modules):", "name.startswith(prefix)",
                 "tokens = set(name[len(prefix):].split('.'))",
                 "if not tokens - set(code.co_names):", "subimports.append(sys.modules[name])"):
        assert step in search


def test_beams_option_views_keep_their_values_in_the_shared_dict():
    """pipeline/runners/beam_option_views.py returns the view view_as made before: a view must
    still keep its values in the options' shared _all_options (set by view_as), fill only
    missing keys, and read and write through that dict."""
    from apache_beam.options.pipeline_options import PipelineOptions

    view_as = inspect.getsource(PipelineOptions.view_as)
    for line in ("view = cls(self._flags)", "if option_name not in self._all_options:",
                 "view._all_options = self._all_options"):
        assert line in view_as, line
    assert "return self._all_options[name]" in inspect.getsource(PipelineOptions.__getattr__)
    assert "self._all_options[name] = value" in inspect.getsource(PipelineOptions.__setattr__)


def test_tfmas_metrics_file_is_read_as_load_eval_result_reads_it():
    """pipeline/console/summary_figures.py:_MetricsOnly repeats load_eval_result's metrics
    step without its plots (tests/e2e/test_pipeline_e2e.py compares the two on a real run)."""
    from tensorflow_model_analysis.api import model_eval_lib

    source = inspect.getsource(model_eval_lib.load_eval_result)
    for line in ("metrics_plots_and_validations_writer.load_and_deserialize_metrics(",
                 "view_util.convert_metrics_proto_to_dict(p, model_name=model_name)"):
        assert line in source, line


def test_the_tracking_record_reads_the_evaluation_as_load_eval_result_reads_it():
    """pipeline/tracking/stage_records.py:candidate_result repeats load_eval_result's steps,
    converting the overall slice's plots only (tests/e2e/test_pipeline_e2e.py compares the two
    on a real run)."""
    from tensorflow_model_analysis.api import model_eval_lib

    source = inspect.getsource(model_eval_lib.load_eval_result)
    for line in ("eval_config_writer.load_eval_run(output_path)",
                 "view_util.convert_metrics_proto_to_dict(p, model_name=model_name)",
                 "metrics_plots_and_validations_writer.load_and_deserialize_plots(",
                 "view_util.convert_plots_proto_to_dict(p, model_name=model_name)",
                 "model_location = model_locations[model_name]"):
        assert line in source, line


def test_the_kubeflow_checks_mirror_tfxs_compiler():
    """pipeline/runners/kubeflow_spec.py:kfp_problems names what TFX's Kubeflow v2 compiler
    would refuse: its private type-name pattern and the resolver strategies it compiles."""
    from tfx.dsl.components.common import resolver
    from tfx.orchestration.kubeflow.v2 import compiler_utils, step_builder

    from pipeline.runners import kubeflow_spec

    assert kubeflow_spec._KFP_TYPE_NAME.pattern == compiler_utils._SCHEMA_TITLE_RE.pattern  # noqa: SLF001
    source = inspect.getsource(step_builder)
    for strategy in kubeflow_spec._KFP_RESOLVER_STRATEGIES:  # noqa: SLF001
        assert f"{strategy}:" in source or f".{strategy}" in source, strategy
    assert resolver.RESOLVER_STRATEGY_CLASS == "resolver_class"


def test_the_bench_calls_tfxs_penguin_example_and_data_accessor_as_they_are():
    """pipeline/bench/reference_penguin.py (target 7) and pipeline/bench/baselines.py (the
    Trainer's input timed beside plain Keras)."""
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import tfxio_utils
    from tfx.examples.penguin import penguin_pipeline_local

    assert set(_parameters(penguin_pipeline_local.create_pipeline)) == {
        "pipeline_name", "pipeline_root", "data_root", "module_file", "accuracy_threshold",
        "serving_model_dir", "metadata_path", "user_provided_schema_path", "enable_tuning",
        "enable_bulk_inferrer", "enable_example_diff", "examplegen_input_config",
        "examplegen_range_config_date", "resolver_range_config", "beam_pipeline_args",
        "enable_transform_input_cache"}
    assert DataAccessor._fields == ("tf_dataset_factory", "record_batch_factory",  # noqa: SLF001
                                    "data_view_decode_fn")
    assert _parameters(tfxio_utils.get_tf_dataset_factory_from_artifact) == [
        "examples", "telemetry_descriptors"]


def test_distribution_validator_writes_where_the_drift_gate_reads():
    """components/score/drift.py reads DistributionValidator's anomalies from
    <uri>/SplitPair-<test>_<baseline>/SchemaDiff.pb."""
    from tfx.components.distribution_validator import executor

    from components.score import drift

    assert executor.DEFAULT_FILE_NAME == drift.ANOMALIES_FILE
    source = inspect.getsource(executor)
    assert f"'{drift.SPLIT_PAIR_PREFIX}%s' % split_pair" in source
    assert "split_pair = '%s_%s' % (test_split, baseline_split)" in source


def test_example_validator_validates_without_an_environment():
    """components/score/serving_schema.py validates a file to score in TFDV's SERVING
    environment itself, because TFX's ExampleValidator passes none (a schema's
    not_in_environment then does nothing); TFDV takes the environment as a keyword."""
    import tensorflow_data_validation as tfdv
    from tfx.components.example_validator import executor

    call = re.search(r"tfdv\.validate_statistics\((.*?)\)", inspect.getsource(executor), re.DOTALL)
    assert call and "environment" not in call.group(1)
    assert "environment" in _parameters(tfdv.validate_statistics)


# ---- TFMA ---------------------------------------------------------------------------------------

# What components/evaluate/row_batch_combiners.py reads of each private TFMA combiner it
# subclasses (on_rows copies the TFMA combiner's __dict__ into the subclass).
_COMBINER_STATE = {
    "ExampleCount": ("_ExampleCountCombiner",
                     {"_model_name", "_output_name", "_example_weighted"}),
    "AUC": ("_CalibrationHistogramCombiner",
            {"_key", "_eval_config", "_example_weighted", "_aggregation_type", "_class_weights",
             "_num_buckets", "_left", "_range", "_fractional_labels",
             "_prediction_based_bucketing"}),
    "MultiClassConfusionMatrixPlot": ("_MultiClassConfusionMatrixCombiner",
                                      {"_key", "_eval_config", "_example_weighted",
                                       "_thresholds"}),
}


@pytest.mark.parametrize("metric", sorted(_COMBINER_STATE))
def test_tfmas_private_combiners_keep_the_state_the_row_batch_combiners_read(metric):
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.metrics import metric_types

    from components.evaluate import row_batch_combiners

    class_name, attributes = _COMBINER_STATE[metric]
    config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key="label")])
    keywords = {"eval_config": config, "model_names": [""], "output_names": [""]}
    if metric == "AUC":
        keywords["sub_keys"] = [metric_types.SubKey(class_id=1)]
    combiners = [c.combiner for c in getattr(tfma.metrics, metric)().computations(**keywords)
                 if isinstance(c, metric_types.MetricComputation)]
    [combiner] = [c for c in combiners if type(c).__name__ == class_name]
    assert type(combiner) in row_batch_combiners._ON_ROWS  # noqa: SLF001
    assert attributes <= set(vars(combiner)), attributes - set(vars(combiner))


def test_tfmas_default_extractors_end_by_unbatching_then_slicing():
    """components/evaluate/evaluator_module.py:custom_extractors replaces TFMA's last two default
    extractors; it keeps TFMA's defaults (the slow per-example path) if they end otherwise."""
    import tensorflow_model_analysis as tfma

    from components.evaluate import evaluator_module

    extractors = tfma.default_extractors(eval_config=tfma.EvalConfig(), eval_shared_model=None)
    assert [e.stage_name for e in extractors[-2:]] == \
        evaluator_module._PER_EXAMPLE_STAGES  # noqa: SLF001


def test_tfmas_slice_key_function_and_batch_helpers():
    """components/evaluate/slice_groups.py runs TFMA's slice-key DoFn by hand, once per group,
    and TFMA's batch helpers."""
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.extractors import slice_key_extractor

    assert _parameters(slice_key_extractor.ExtractSliceKeysFn.__init__)[:3] == [
        "self", "eval_config", "materialize"]
    assert _parameters(slice_key_extractor.ExtractSliceKeysFn.process)[:3] == [
        "self", "element", "slice_spec"]
    assert callable(tfma.utils.util.split_extracts) and callable(tfma.utils.util.batch_size)


def test_an_eval_shared_model_is_a_namedtuple_with_a_model_loader():
    """components/evaluate/positional_signatures.py:with_positional_signatures replaces the
    shared model's loader with _replace."""
    import tensorflow_model_analysis as tfma

    assert "model_loader" in tfma.types.EvalSharedModel._fields  # noqa: SLF001
    assert {"construct_fn", "tags"} <= set(_parameters(tfma.types.ModelLoader.__init__))


# ---- TensorFlow ---------------------------------------------------------------------------------

def test_autograph_keeps_its_do_not_convert_rules_where_the_model_adds_tf_keras():
    """components/train/model.py:keep_autograph_out_of_keras adds a DoNotConvert("tf_keras")
    rule to AutoGraph's private conversion rules, as TensorFlow has one for "keras"."""
    from tensorflow.python.autograph.core import config

    assert isinstance(config.CONVERSION_RULES, tuple)
    prefixes = {rule._prefix for rule in config.CONVERSION_RULES  # noqa: SLF001
                if isinstance(rule, config.DoNotConvert)}
    assert "keras" in prefixes
    assert config.DoNotConvert("tf_keras")._prefix == "tf_keras"  # noqa: SLF001


def test_tf_keras_is_tf_keras_when_legacy_keras_is_asked_for():
    """pipeline/cli/main.py:main sets TF_USE_LEGACY_KERAS=1 before TensorFlow loads: tf.Transform
    and TFMA need Keras 2 (tf_keras), which TensorFlow 2.16 gives as tf.keras only then."""
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    import tensorflow as tf
    import tf_keras

    assert tf.keras.Model is tf_keras.Model


# ---- Apache Beam --------------------------------------------------------------------------------

def test_beam_pickles_what_the_components_ship_with_cloudpickle():
    """pipeline/config/settings.py:Settings._beam_runner_args asks for --pickle_library=cloudpickle;
    Beam sets its pickler from that option when a pipeline is built, and the DoFns and loaders
    the components ship to workers must round-trip through it."""
    import functools

    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from apache_beam.internal import pickler
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

    from components.evaluate import positional_signatures, slice_groups
    from pipeline.config.settings import Settings

    args = Settings()._beam_runner_args()  # noqa: SLF001
    assert "--pickle_library=cloudpickle" in args
    assert PipelineOptions(args).view_as(SetupOptions).pickle_library == pickler.USE_CLOUDPICKLE
    assert "pickler.set_library(pickle_library)" in inspect.getsource(beam.Pipeline.__init__)
    config = tfma.EvalConfig(slicing_specs=[tfma.SlicingSpec(feature_keys=["island"])])
    shipped = [slice_groups._GroupRowsFn(config),  # noqa: SLF001
               functools.partial(positional_signatures._load, dict)]  # noqa: SLF001
    pickler.set_library(pickler.USE_CLOUDPICKLE)
    try:
        for thing in shipped:
            assert type(pickler.loads(pickler.dumps(thing))) is type(thing)
    finally:
        pickler.set_library(pickler.DEFAULT_PICKLE_LIB)


def test_beams_worker_pool_service_keeps_what_the_loopback_pool_reads():
    """pipeline/cluster/worker_pool.py subclasses Beam's BeamFnExternalWorkerPoolServicer to
    start each SDK worker with this interpreter: it reads the servicer's private settings and
    process table and calls SdkHarness as Beam's own StartWorker does."""
    from apache_beam.runners.worker import sdk_worker, worker_pool_main

    servicer = worker_pool_main.BeamFnExternalWorkerPoolServicer(use_process=True)
    assert isinstance(servicer._state_cache_size, int)  # noqa: SLF001
    assert isinstance(servicer._data_buffer_time_limit_ms, int)  # noqa: SLF001
    assert servicer._worker_processes == {}  # noqa: SLF001
    assert _parameters(sdk_worker.SdkHarness.__init__)[:5] == [
        "self", "control_address", "credentials", "worker_id", "state_cache_size"]
    assert "data_buffer_time_limit_ms" in _parameters(sdk_worker.SdkHarness.__init__)
    source = inspect.getsource(worker_pool_main.BeamFnExternalWorkerPoolServicer.StartWorker)
    assert "'python'," in source  # Beam still starts PATH's python: the fix is still needed


# ---- Great Expectations -------------------------------------------------------------------------

def test_gx_matches_a_str_subclass_column_label_exactly():
    """components/contract/suite_validation.py:_exact_columns: GX resolves a column by name
    case-insensitively when the frame's labels are exactly `str`; labels of a str subclass are
    matched exactly, so `Year` and `year` are checked apart."""
    import great_expectations as gx
    import pandas as pd

    from components.contract import suite_validation

    frame = suite_validation._exact_columns(  # noqa: SLF001
        pd.DataFrame({"Year": [2007, 2008], "year": [1.5, 2.5]}))
    assert all(type(c) is not str for c in frame.columns)
    batch = suite_validation._ephemeral_batch_definition().get_batch(  # noqa: SLF001
        batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name="exact", expectations=[
        gx.expectations.ExpectColumnValuesToBeBetween(column="year", min_value=0, max_value=10),
        gx.expectations.ExpectColumnValuesToBeBetween(column="Year", min_value=2000,
                                                      max_value=2100)])
    results = batch.validate(suite).results
    assert [r.success for r in results] == [True, True], [
        (r.expectation_config.kwargs["column"], r.result) for r in results]


# ---- MLflow -------------------------------------------------------------------------------------

def test_mlflows_private_source_type_of_a_local_csv():
    """pipeline/tracking/dataset_inputs.py:dataset_inputs builds the Dataset entity itself, with
    the source type from LocalArtifactDatasetSource's private _get_source_type."""
    from mlflow.data.sources import LocalArtifactDatasetSource
    from mlflow.entities import Dataset

    source = LocalArtifactDatasetSource("/data/x.csv")
    assert source._get_source_type() == "local"  # noqa: SLF001
    assert {"name", "digest", "source_type", "source", "schema", "profile"} <= set(
        _parameters(Dataset.__init__))


def test_mlflows_run_source_type_tag_value():
    """pipeline/tracking/git_source.py tags each run mlflow.source.type=LOCAL."""
    from mlflow.entities import SourceType

    from pipeline.tracking import git_source

    assert git_source.SOURCE_TYPE == SourceType.to_string(SourceType.LOCAL)


def test_mlflow_answers_an_invalid_parameter_error_with_400():
    """pipeline/tracking/serving_pyfunc.py raises MlflowException.invalid_parameter_value for a
    bad request, which the scoring server turns into HTTP 400 with the message."""
    from mlflow.exceptions import MlflowException

    assert MlflowException.invalid_parameter_value("bad").get_http_status_code() == 400


def test_mlflows_model_server_is_a_uvicorn_process_that_inherits_the_environment(monkeypatch):
    """pipeline/tracking/serve_hook/sitecustomize.py acts only in a process whose argv[0] is
    `uvicorn`, and reaches it through PYTHONPATH (pipeline/tracking/mlflow_cli.py:serve_env)."""
    from mlflow.pyfunc import scoring_server

    monkeypatch.setenv("PYTHONPATH", "/the/serve_hook")
    command, env = scoring_server.get_cmd("file:///model", nworkers=2)
    assert command.split()[0] == "uvicorn" and "--workers 2" in command
    assert env["PYTHONPATH"] == "/the/serve_hook"
    assert env[scoring_server._SERVER_MODEL_PATH]  # noqa: SLF001


# ---- uvicorn ------------------------------------------------------------------------------------

def test_uvicorn_binds_the_workers_socket_through_config_bind_socket():
    """pipeline/tracking/serve_hook/sitecustomize.py wraps uvicorn.config.Config.bind_socket,
    which uvicorn's main calls for more than one worker."""
    import importlib

    from uvicorn.config import Config

    main = importlib.import_module("uvicorn.main")  # `uvicorn.main` is also the CLI command
    assert _parameters(Config.bind_socket) == ["self"]
    assert re.search(r"workers > 1:\s*\n\s*sock = config\.bind_socket\(\)",
                     inspect.getsource(main))


def test_ml_metadatas_client_retries_an_aborted_call_in_the_method_lock_retry_replaces():
    """pipeline/mlmd/lock_retry.py replaces MetadataStore._call: the loop that calls
    _call_method and, on AbortedError, waits expovariate(1 / 2) seconds before the next try.
    If this fails, read the new _call and change lock_retry._call to match it."""
    from ml_metadata.metadata_store import metadata_store

    from pipeline.mlmd import lock_retry

    original = metadata_store.MetadataStore.__dict__["_call"]
    if original is lock_retry._call:  # installed by an earlier test in this process
        pytest.skip("lock_retry is installed here; checked in a process without it")
    assert _parameters(original) == ["self", "method_name", "request", "response",
                                     "extra_options"]
    source = inspect.getsource(original)
    assert "self._call_method(method_name, request, response)" in source
    assert "except errors.AbortedError" in source
    assert "random.expovariate(1.0 / avg_delay_sec)" in source
    assert "self._max_num_retries" in source


def test_beams_stage_descriptor_is_built_as_the_lever_rebuilds_it():
    """pipeline/runners/beam_bundle_descriptors.py replaces
    BundleContextManager._build_process_bundle_descriptor with one that copies only the stage's
    PCollections: the original must still build it from these fields and no others, and its
    caller must still look the method up on the class. If this fails, compare the new method
    with beam_bundle_descriptors._stage_descriptor and change the latter."""
    from apache_beam.runners.portability.fn_api_runner import execution

    source = inspect.getsource(execution.BundleContextManager._build_process_bundle_descriptor)
    fields = re.findall(r"^\s+(\w+)=", source, re.MULTILINE)
    assert fields == ["id", "transforms", "pcollections", "coders", "windowing_strategies",
                      "environments", "state_api_service_descriptor",
                      "timer_api_service_descriptor"], fields
    assert "self._build_process_bundle_descriptor()" in inspect.getsource(
        execution.BundleContextManager.process_bundle_descriptor.fget)


def test_tensorflows_runtime_takes_the_contexts_config_once_and_sessions_read_the_current_one():
    """pipeline/runners/tf_data_functions.py: the eager context's runtime is made from
    `self.config` when it starts (its `ensure_initialized`, called through the instance, before
    the first op), tf.data's functions are instantiated with that runtime's config, and a session
    made without a config, like tf.Transform's, reads the context's current one."""
    from tensorflow.python.client import session
    from tensorflow.python.eager import context

    start = inspect.getsource(context.Context.ensure_initialized)
    assert "if self._initialized:" in start
    assert "config_str = self.config.SerializeToString()" in start
    assert "TFE_ContextOptionsSetConfig(opts, config_str)" in start
    assert "context().ensure_initialized()" in inspect.getsource(context.ensure_initialized)
    assert "self._optimizer_experimental_options.update(options)" in inspect.getsource(
        context.Context.set_optimizer_experimental_options)
    assert "config = context.context().config" in inspect.getsource(session.BaseSession.__init__)
