"""The one config validator: known keys, types and ranges, checked before anything trains or loads.

The schema is derived, not written twice: every key of ``TRAIN_DEFAULTS`` and
of the task's ``default_config()`` is known, with the types its default and its
presets give it (a ``None`` default accepts any value; an integer setting
refuses 1.7, a float one accepts 2).  ``RULES`` add ranges to keys of that
schema wherever a task has them, and ``Task.validate_config`` adds the
task's own checks.  Unknown keys are refused with the nearest known key.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from apptool.errors import ConfigError
from apptool.task import TRAIN_DEFAULTS, deep_merge

if TYPE_CHECKING:  # pragma: no cover
    from apptool.task import Task

#: Top-level keys the core writes besides the schema: the run's identity and the bundle's provenance.
CORE_KEYS = frozenset(
    {"task", "preset", "run_id", "bundle_format", "apptool_version", "plugin_version", "graphs", "data_dir", "data_source"}
)

Rule = Callable[[Any], "str | None"]


def at_least(low: int | float) -> Rule:
    return lambda v: None if v >= low else f"must be at least {low}"


def positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def fraction(low_open: bool) -> Rule:
    """A share in [0, 1) (or (0, 1) with ``low_open``)."""
    return lambda v: None if (0 < v < 1 if low_open else 0 <= v < 1) else f"must be in {'(' if low_open else '['}0, 1)"


def one_of(*choices: str) -> Rule:
    return lambda v: None if v in choices else f"expected one of {', '.join(choices)}"


#: Ranges of keys wherever the schema has them (the training keys always; data sizes where a task has them).
RULES: dict[str, Rule] = {
    "seed": at_least(0),
    "train.epochs": at_least(1),
    "train.steps": at_least(0),
    "train.min_epochs": at_least(1),
    "train.max_epochs": at_least(1),
    "train.batch_size": at_least(1),
    "train.optimizer": one_of("adamw", "sgd"),
    "train.lr": positive,
    "train.momentum": at_least(0),
    "train.weight_decay": at_least(0),
    "train.schedule": one_of("cosine", "step", "constant"),
    "train.warmup_epochs": at_least(0),
    "train.val_fraction": fraction(low_open=False),
    "train.patience": at_least(0),
    "train.grad_clip": at_least(0),
    "train.finetune": one_of("full", "frozen", "gradual"),
    "train.backbone_lr_mult": at_least(0),
    "train.unfreeze_epoch": at_least(0),
    "train.num_workers": at_least(0),
    "train.min_val_size": at_least(0),
    "data.n_train": at_least(1),
    "data.n_test": at_least(1),
    "data.train_size": at_least(1),
    "data.test_size": at_least(1),
    "data.test_fraction": fraction(low_open=True),
}

KIND_NAMES = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "list": "a list",
    "dict": "a section (a JSON object)",
}


def _kind(value: Any) -> str:
    if value is None:
        return "none"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", (list, tuple)), ("dict", dict)):
        if isinstance(value, types):
            return kind
    return type(value).__name__


def schema_examples(task: Task) -> list[dict[str, Any]]:
    """The defaults, and the defaults under each preset: every value a key may take by design."""
    # every task may read its data with a plugin's reader: ``data.format`` (apptool.datasets.load_splits)
    defaults = deep_merge({"train": dict(TRAIN_DEFAULTS), "seed": 0, "data": {"format": None}}, task.default_config())
    return [defaults] + [deep_merge(defaults, preset) for preset in task.presets.values()]


def _kinds(examples: list[Any]) -> set[str]:
    kinds = {_kind(e) for e in examples}
    return kinds | {"int"} if "float" in kinds else kinds


def _problem(value: Any, examples: list[Any]) -> str | None:
    """Why ``value`` does not have a type the examples allow, or None."""
    allowed = _kinds(examples)
    kind = _kind(value)
    if "none" in allowed or kind in allowed:
        if kind == "float" and not math.isfinite(value):
            return "must be a finite number"
        if kind == "list":
            items = [item for e in examples if isinstance(e, (list, tuple)) for item in e]
            for index, item in enumerate(value):
                if items and (why := _problem(item, items)):
                    return f"item {index}: {why}"
        return None
    wanted = " or ".join(KIND_NAMES.get(k, k) for k in sorted(allowed - {"int"} if "float" in allowed else allowed))
    return f"expected {wanted}"


def _nearest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"


def _check_section(config: dict, examples: list[dict], prefix: str, errors: list[str], allow_unknown: bool) -> None:
    known = sorted({k for e in examples for k in e})
    for key, value in config.items():
        path = f"{prefix}{key}"
        values = [e[key] for e in examples if key in e]
        if not values:
            if not allow_unknown:
                errors.append(f"unknown config key {path!r}{_nearest(path, [prefix + k for k in known])}")
            continue
        if (why := _problem(value, values)) is not None:
            errors.append(f"{path} = {value!r}: {why}")
        elif isinstance(value, dict) and "none" not in _kinds(values):
            _check_section(value, [v for v in values if isinstance(v, dict)], f"{path}.", errors, allow_unknown)
        elif (rule := RULES.get(path)) is not None and (why := rule(value)) is not None:
            errors.append(f"{path} = {value!r}: {why}")


def check_config(task: Task, config: dict[str, Any], trained: bool = False) -> dict[str, Any]:
    """``config`` if every key is known and every value fits; otherwise a ConfigError naming the first bad key.

    ``trained``: the config also carries what the data told the bundle
    (labels, normalisation: ``Splits.info``) at its top level; those keys are
    the task's, and keys of its sections may come from an older plugin.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"config: expected a JSON object, got {type(config).__name__}")
    examples = schema_examples(task)
    errors: list[str] = []
    top = {k: v for k, v in config.items() if k not in CORE_KEYS}
    _check_section(top, examples, "", errors, allow_unknown=trained)
    _raise_first(errors)
    task.validate_config(config)
    return config


def check_data_options(task: Task, options: dict[str, Any]) -> dict[str, Any]:
    """``eval --set data.KEY=VALUE``: keys the task's data section knows, values of the kind it expects."""
    errors: list[str] = []
    sections = [e["data"] for e in schema_examples(task) if isinstance(e.get("data"), dict)]
    _check_section(options, sections, "data.", errors, allow_unknown=False)
    _raise_first(errors)
    return options


def _raise_first(errors: list[str]) -> None:
    if errors:
        raise ConfigError(errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))


def with_defaults(task: Task, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with the keys it lacks taken from the task's defaults (a bundle from an older plugin)."""
    return deep_merge(schema_examples(task)[0], config)
