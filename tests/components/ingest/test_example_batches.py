"""Reading examples with TensorFlow's parser (components/ingest/example_batches.py) gives the
RecordBatches tfx_bsl's decoder gives, and the contract check's float32 values read back as the
CSV's decimals (example_frames.shortest_decimals)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import DATA, write_csv_sample
from example_gen_runs import EDGE_CASES, run_example_gen

# The edge cases without their 'inf', which the ingestion refuses where CsvExampleGen writes an
# infinite float (test_number_cells.py); ' 2.5 ' is a Python-only number form too.
FINITE_EDGE_CASES = EDGE_CASES.replace(",inf,", ", 2.5 ,")
from tfx_bsl.coders import example_coder

from components.contract.example_frames import shortest_decimals
from components.ingest import example_batches
from components.ingest import executor as ingest_executor


def _ingested(csv, out) -> list[bytes]:
    """The examples our ingestion writes for csv, in one split, in file order."""
    run_example_gen(ingest_executor.Executor, csv, out, splits=(("all", 1),))
    files = example_batches.record_files(str(out / "Split-all"))
    return list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())


def _tfx_bsl(serialized) -> object:
    return example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(serialized))


@pytest.mark.e2e  # ingests with the real executor (Beam)
def test_taxi_and_edge_cases_decode_as_tfx_bsl_decodes_them(tmp_path):
    taxi = write_csv_sample(DATA / "taxi" / "data.csv", tmp_path / "taxi" / "data.csv", rows=900)
    header, rows = FINITE_EDGE_CASES.split("\n", 1)
    edge = tmp_path / "edge" / "data.csv"
    edge.parent.mkdir()
    # Past the rows whose types tfx_bsl reads, so the parser does the rest: empty cells, an
    # all-empty column (no value list), non-ASCII text, quoted commas and line breaks.
    edge.write_text(header + "\n" + rows * 200, encoding="utf-8")
    for csv, out in ((taxi, tmp_path / "taxi_out"), (edge, tmp_path / "edge_out")):
        serialized = _ingested(csv, out)
        assert len(serialized) > 600
        batch = example_batches.decode_batch(np.array(serialized, dtype=object))
        assert batch.equals(_tfx_bsl(serialized)), csv
        batches = list(example_batches.read_batches(
            example_batches.record_files(str(out / "Split-all")), 500))
        assert [b.num_rows for b in batches] == [500] * (len(serialized) // 500) + (
            [len(serialized) % 500] if len(serialized) % 500 else [])
        assert all(b.equals(_tfx_bsl(serialized[i * 500:(i + 1) * 500]))
                   for i, b in enumerate(batches))


def _example(**features) -> bytes:
    example = tf.train.Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value, float):
            feature.float_list.value.append(value)
        elif isinstance(value, bytes):
            feature.bytes_list.value.append(value)
        elif value is not None:
            feature.int64_list.value.append(value)
    return example.SerializeToString()


def test_a_feature_without_values_in_the_first_rows_is_read_as_tfx_bsl_reads_it():
    """Types come from the first rows; a feature with no value list there but floats further
    down is one the parser cannot type: the batch goes to tfx_bsl, and reads the same."""
    serialized = [_example(a=1, b=None) for _ in range(300)] + [
        _example(a=2, b=0.5) for _ in range(300)]
    assert example_batches.decode_batch(serialized).equals(_tfx_bsl(serialized))


def test_a_feature_of_two_types_fails_as_in_tfx_bsl():
    serialized = [_example(a=1) for _ in range(300)] + [_example(a=b"x") for _ in range(10)]
    with pytest.raises(Exception) as theirs:
        _tfx_bsl(serialized)
    with pytest.raises(Exception) as ours:
        example_batches.decode_batch(serialized)
    assert type(ours.value) is type(theirs.value)


def test_shortest_decimals_are_what_str_prints():
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.normal(0, 1, 20_000), rng.uniform(-180, 180, 20_000).round(6),
        rng.uniform(0, 500, 20_000).round(2), rng.lognormal(5, 6, 20_000),
        [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, 3.4e38, 1.17e-38, 123456789.0, 0.1, 1e20,
         7e-10, 5e-13, 9.99e12, 1e13, 12.45, -87.65418839790156],
    ]).astype(np.float32)
    expected = values.astype(str).astype(np.float64)
    got = shortest_decimals(values)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)  # NaN equals NaN here
    assert got[values == np.float32(12.45)][0] == 12.45


def test_contract_frames_hold_at_most_batch_cells():
    from pathlib import Path

    from components.contract import example_frames
    from pipeline.config.dataset_spec import DatasetSpec, Feature

    def spec(columns: int) -> DatasetSpec:
        return DatasetSpec(name="wide", csv_path=Path("wide.csv"), task="binary", label="y",
                           classes=("0", "1"), features=tuple(
                               Feature(f"x{i}", "float") for i in range(columns - 1)) + (
                               Feature("y", "int", role="label"),))

    assert example_frames.frame_rows(spec(5)) == example_frames.BATCH_ROWS == 150_000
    assert example_frames.frame_rows(spec(20), 7) == 7
    assert example_frames.frame_rows(spec(20)) == 50_000
    assert example_frames.frame_rows(spec(200)) == 5_000
