"""Train/test splits from the built-in generator, UCR/UEA ``.ts`` files, or CSV sequences (numpy only).

``--data DIR`` layouts, tried in this order:

* ``DIR/<Problem>_TRAIN.ts`` and ``DIR/<Problem>_TEST.ts`` (one problem per folder);
* ``DIR/train/<class>/*.csv`` and ``DIR/test/<class>/*.csv`` (see ``csvformat``).

Class names are kept as the files give them (``@classLabel`` order for
``.ts``, folder names sorted for CSV); the test split may not use a class the
training split lacks.  Standardisation statistics are fitted on the training
split only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import DataError
from apptool.paths import inside_data_folder
from apptool_gesture.augment import Augment
from apptool_gesture.csvformat import read_csv_split
from apptool_gesture.features import Prepare, fit_input_spec
from apptool_gesture.generator import GESTURES, generate, generator_kind
from apptool_gesture.tsformat import read_ts


@dataclass
class SequenceSet:
    """Raw (T, D) sequences with class indices into ``classes``; items are (model input, label) pairs."""

    sequences: list[np.ndarray]
    labels: list[int]
    classes: list[str]
    transform: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    reference: SequenceSet | None = field(default=None, repr=False)  # the test split's training split, for baselines
    augment: Augment | None = field(default=None, repr=False)  # the training split's, after ``transform``

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        seq = self.sequences[index]
        seq = self.transform(seq) if self.transform else seq
        return (self.augment(seq, index) if self.augment else seq), self.labels[index]

    def set_epoch(self, epoch: int) -> None:
        """The trainer's epoch, from which augmentation draws (nothing to do without augmentation)."""
        if self.augment is not None:
            self.augment.set_epoch(epoch)


def _index_labels(names: list[str], classes: list[str], where: str) -> list[int]:
    lookup = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(names) - set(lookup))
    if unknown:
        raise DataError(f"{where}: class labels {unknown} do not occur in the training split ({', '.join(classes)})")
    return [lookup[n] for n in names]


def _from_ts(data_dir: Path) -> tuple[list, list[str], list, list[str], list[str], dict[str, Any]]:
    trains = sorted(data_dir.glob("*_TRAIN.ts"))
    if len(trains) > 1:
        raise DataError(f"{data_dir}: several problems ({', '.join(p.name for p in trains)}); put one per folder")
    train_path = trains[0]
    test_path = train_path.with_name(train_path.name[: -len("_TRAIN.ts")] + "_TEST.ts")
    if not test_path.is_file():
        raise DataError(f"{test_path}: missing; expected it next to {train_path.name}")
    for path in (train_path, test_path):
        inside_data_folder(path, data_dir)
    train, test = read_ts(train_path), read_ts(test_path)
    for part in (train, test):
        if part.labels is None:
            raise DataError(f"{part.path}: has no class labels (@classLabel false); training needs labelled cases")
    if test.dims != train.dims:
        raise DataError(f"{test_path}: {test.dims} dimensions, but {train_path.name} has {train.dims}")
    source = {
        "format": "ts",
        "problem_name": train.problem_name,
        "train_file": train_path.name,
        "test_file": test_path.name,
        "equal_length": len({len(s) for s in train.series + test.series}) == 1,
    }
    return train.series, train.labels, test.series, test.labels, train.class_names, source


def _from_csv(data_dir: Path) -> tuple[list, list[str], list, list[str], list[str], dict[str, Any]]:
    train, train_names = read_csv_split(data_dir / "train")
    test, test_names = read_csv_split(data_dir / "test")
    if test[0].shape[1] != train[0].shape[1]:
        raise DataError(f"{data_dir / 'test'}: {test[0].shape[1]} channels, but train has {train[0].shape[1]}")
    return train, train_names, test, test_names, sorted(set(train_names)), {"format": "csv"}


def load_splits(config: dict[str, Any], data_dir: Path | None) -> tuple[SequenceSet, SequenceSet, dict[str, Any]]:
    """Train and test sets (transform attached) and the info the bundle config keeps."""
    data_cfg, seed = config["data"], int(config.get("seed", 0))
    if data_dir is None:
        train, train_y = generate(data_cfg, int(data_cfg["train_per_class"]), seed * 2)
        test, test_y = generate(data_cfg, int(data_cfg["test_per_class"]), seed * 2 + 1)
        classes, features_kind = list(GESTURES), generator_kind(data_cfg)
        source = {"format": "generator", "kind": features_kind, "seed": seed}
    else:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise DataError(f"{data_dir}: not a folder; expected *_TRAIN.ts and *_TEST.ts, or train/<class>/*.csv")
        reader = _from_ts if any(data_dir.glob("*_TRAIN.ts")) else _from_csv
        train, train_names, test, test_names, classes, source = reader(data_dir)
        train_y = _index_labels(train_names, classes, str(data_dir))
        test_y = _index_labels(test_names, classes, str(data_dir))
        features_kind = "raw"
    spec = fit_input_spec(
        train,
        features_kind,
        float(data_cfg.get("fps", 50)),
        bool(data_cfg.get("series_norm", False)),
        int(data_cfg.get("target_frames", 0)),
    )
    info = {"labels": classes, "input": spec, "dataset": {**source, "train_size": len(train), "test_size": len(test)}}
    transform = Prepare(spec)
    augment = Augment(config["augment"], seed) if config.get("augment", {}).get("enabled") else None
    train_set = SequenceSet(train, train_y, classes, transform, augment=augment)
    return train_set, SequenceSet(test, test_y, classes, transform, reference=train_set), info


def unaugmented(part) -> tuple[list[np.ndarray], np.ndarray]:
    """Model inputs and labels of a training part (a SequenceSet, or the trainer's Subset of one) without augmentation."""
    dataset, indices = (part.dataset, list(part.indices)) if hasattr(part, "indices") else (part, range(len(part)))
    inputs = [dataset.transform(dataset.sequences[i]) if dataset.transform else dataset.sequences[i] for i in indices]
    return inputs, np.array([dataset.labels[i] for i in indices], np.int64)
