"""`make init`'s inference: a dataset spec drafted from a CSV, by stated rules (docs/init.md).

  table_sample.py   one streaming pass: the ExampleGen's column types, row and empty counts,
                    the label's value counts, a seeded uniform sample of rows
  hash_split.py     the pipeline's train/eval split of the sampled rows (same hash)
  task.py           binary / multiclass / regression and the class order, from the label
  column_roles.py   each column's type and role (ignored columns and why)
  leakage.py        one column alone against the label on held-out rows: ignore / flag
  slicing.py        the slicing column
  gate_proposal.py  gates from trivial baselines on the pipeline's eval rows
  draft.py          all of the above, in order: a DatasetDraft
  spec_writer.py    spec.yaml text, a comment on every line

Pure and quick: standard library, numpy, pyarrow, pandas, scikit-learn; never TensorFlow, TFX
or Beam (the init command in pipeline/cli drafts the schema and suite after it).
"""
