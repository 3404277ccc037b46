"""The bench's "32 numeric columns, 569 rows" dataset: scikit-learn's breast-cancer table.

`sklearn.datasets.load_breast_cancer` ships inside scikit-learn (nothing is downloaded): 569
rows, 30 numeric features and the diagnosis (0 malignant, 1 benign). Written as a dataset of
its own, like the original WDBC file with a row `id` first: 32 numeric columns, `id` ignored.

Column names are snake_case (`mean radius` -> `mean_radius`), as the original WDBC file has
them. The pipeline takes scikit-learn's spaced names too (docs/datasets.md); `make init`'s bench
tables use them as they come.

The schema and the suite are not written here: the bench drafts them with the pipeline's own
`schema` and `expectations` commands, as README "Datasets" asks of a new dataset.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

NAME = "breast_cancer"
LABEL = "diagnosis"
ID = "id"


def column_name(sklearn_name: str) -> str:
    """`mean concave points` -> `mean_concave_points`."""
    return re.sub(r"[^0-9a-zA-Z]+", "_", sklearn_name.strip()).strip("_").lower()


def write_dataset(data_root: Path, name: str = NAME) -> Path:
    """data_root/name/data.csv and spec.yaml; returns the spec's path."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    features = bunch.data.rename(columns=column_name)
    frame = features.copy()
    frame.insert(0, ID, range(1, len(frame) + 1))
    frame[LABEL] = bunch.target.astype(int)
    folder = Path(data_root) / name
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "data.csv", index=False)  # shortest text that reads back exactly
    classes = sorted(int(c) for c in frame[LABEL].unique())
    meanings = ", ".join(f"{i} {n}" for i, n in enumerate(bunch.target_names))
    spec = {
        "name": name,
        "description": f"scikit-learn's breast-cancer table (Wisconsin diagnostic); predict the "
                       f"diagnosis ({meanings}) from 30 cell-nucleus measurements.",
        "csv": "data.csv",
        "task": "binary",
        "label": LABEL,
        "classes": classes,
        "features": {
            ID: {"type": "int", "role": "ignore"},
            **{column: {"type": "float"} for column in features.columns},
            LABEL: {"type": "int", "role": "label"},
        },
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, width=100, default_flow_style=None))
    return path
