"""Public tables that ship inside installed packages (nothing is downloaded), written as CSVs
the way a user would have them: the original column names (spaces, parentheses, slashes), the
label as its text names, an id column where the original has one.

  breast_cancer_raw  scikit-learn's Wisconsin diagnostic table: 569 rows, `id`, 30 measurements
                     named as scikit-learn names them (`mean radius`), `diagnosis` malignant or
                     benign (binary, 37% positive)
  wine               scikit-learn's wine table: 178 rows, 13 measurements
                     (`od280/od315_of_diluted_wines`), `cultivar` class_0..2 (multiclass)
  digits             scikit-learn's 8x8 digits: 1,797 rows, 64 whole-number pixels (0-16),
                     `digit` 0-9 (multiclass, 10 classes)
  penguins_raw       palmerpenguins' raw LTER table: 344 rows, 17 columns with dirty names,
                     ids, a constant, dates, free text, `NA` markers, `Species` as long names
"""
from __future__ import annotations

import shutil
from pathlib import Path

TABLES = ("breast_cancer_raw", "wine", "digits", "penguins_raw")
LABELS = {"breast_cancer_raw": "diagnosis", "wine": "cultivar", "digits": "digit",
          "penguins_raw": "Species"}


def write_csv(table: str, path: Path) -> Path:
    """The table as a CSV at path; returns path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if table == "penguins_raw":
        import palmerpenguins

        source = Path(palmerpenguins.__file__).parent / "data" / "penguins-raw.csv"
        shutil.copyfile(source, path)
        return path
    from sklearn import datasets

    loader = {"breast_cancer_raw": datasets.load_breast_cancer, "wine": datasets.load_wine,
              "digits": datasets.load_digits}[table]
    bunch = loader(as_frame=True)
    frame = bunch.data.copy()
    if table == "digits":
        frame = frame.astype(int)
        frame[LABELS[table]] = bunch.target.astype(int)
    else:
        frame[LABELS[table]] = [bunch.target_names[t] for t in bunch.target]
    if table == "breast_cancer_raw":
        frame.insert(0, "id", range(100001, 100001 + len(frame)))
    frame.to_csv(path, index=False)
    return path
