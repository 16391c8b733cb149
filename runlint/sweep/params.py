"""A run's hyperparameters, from what it recorded or its tool wrote.

In order of precedence (a later source never overrides an earlier one's name):

1. ``meta`` given to ``runlint.record`` (scalars at the top level, and a nested ``hparams``
   mapping), and Lightning's ``hparams.yaml`` (the importer's ``meta["hparams"]``);
2. a Hugging Face Trainer's ``trial_params`` in ``trainer_state.json`` (what
   ``Trainer.hyperparameter_search`` sampled) and a ``training_args.json`` beside it (what
   ``TrainingArguments.to_json_string()`` writes; ``training_args.bin`` is a pickle and is
   never opened);
3. the optimizer's settings at the start (``meta.optimizer``: ``lr``, ``weight_decay``,
   ``momentum``, ``beta1``/``beta2``, ``eps``, and its class as ``optimizer``), and the batch size.

Names that identify a run rather than configure it (seeds, output folders, logging intervals)
are left out. ``dedupe`` then drops a name whose values equal an earlier name's in every trial
(``lr`` given in ``meta`` and read again from the optimizer).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runlint.run import Run
from runlint.schema import META

__all__ = ["dedupe", "hyperparameters", "is_setting"]

#: Names that never are searched hyperparameters (matched against the last dotted part).
_NOT_HPARAMS = re.compile(
    r"^(seed|data_seed|random_state|.*_seed|local_rank|world_size|num_workers|run_name|"
    r"output_dir|logging_dir|logging_.*|save_.*|eval_steps|stage|trial|trial_id|trial_number|"
    r"run_id|name|id|path|dir|device|rank|hostname|pid|push_to_hub.*|hub_.*|report_to)$"
)
#: Hugging Face ``TrainingArguments`` fields that are hyperparameters of a search.
HF_ARGS = (
    "learning_rate",
    "weight_decay",
    "warmup_ratio",
    "warmup_steps",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "lr_scheduler_type",
    "label_smoothing_factor",
    "optim",
)
_OPTIMIZER_KEYS = ("lr", "weight_decay", "momentum", "eps", "alpha", "lr_decay", "rho")


def is_setting(name: str) -> bool:
    """Whether ``name`` may be a hyperparameter (not a seed, a folder, a logging interval)."""
    return not _NOT_HPARAMS.match(name.rsplit(".", 1)[-1].lower())


def _scalar(value: Any) -> bool:
    if isinstance(value, bool | str):
        return True
    return isinstance(value, int | float) and math.isfinite(value)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif _scalar(value):
            out[f"{prefix}{key}"] = value
    return out


def hyperparameters(run: Run) -> dict[str, Any]:
    """The run's hyperparameters by name (see the module's docstring for where from)."""
    meta = run.meta
    out: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if name not in out and _scalar(value) and is_setting(name):
            out[name] = value

    for key, value in meta.items():
        if key in META or key in ("hparams", "imported_from", "imported_names", "import"):
            continue
        if key.startswith(("hf_", "ray_", "optuna_")):
            continue
        put(key, value)
    hparams = meta.get("hparams")
    if isinstance(hparams, Mapping):
        for key, value in _flatten(hparams).items():
            put(key, value)
    if run.source == "hf":
        for key, value in _hf_params(run.path).items():
            put(key, value)
    setup = run.setup
    if setup.optimizer is not None:
        group = setup.optimizer.settings[0] if setup.optimizer.settings else {}
        lr = group.get("initial_lr", group.get("lr"))
        put("lr", lr)
        for key in _OPTIMIZER_KEYS[1:]:
            put(key, group.get(key))
        betas = group.get("betas")
        if isinstance(betas, list | tuple) and len(betas) == 2:
            put("beta1", betas[0])
            put("beta2", betas[1])
        if setup.optimizer.cls:
            put("optimizer", setup.optimizer.cls)
    if setup.batch_size is not None:
        put("batch_size", setup.batch_size)
    return out


def _hf_params(folder: Path) -> dict[str, Any]:
    """``trial_params`` of the Trainer's state, then the hyperparameters of a
    ``training_args.json`` (plain JSON only)."""
    from runlint.run.importers.hf_trainer import state_file

    out: dict[str, Any] = {}
    state = state_file(folder)
    for file in (state, folder / "training_args.json", folder / "args.json"):
        if file is None:
            continue
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict):
            continue
        if file is state:
            trial = doc.get("trial_params")
            if isinstance(trial, dict):
                out.update({k: v for k, v in trial.items() if _scalar(v)})
            continue
        for key in HF_ARGS:
            if key in doc and _scalar(doc[key]) and key not in out:
                out[key] = doc[key]
    return out


def dedupe(params: Sequence[dict[str, Any]]) -> list[str]:
    """Names (in first-seen order) to drop because an earlier name holds the same values in
    every trial: the second reading of one hyperparameter."""
    names: list[str] = []
    for p in params:
        for key in p:
            if key not in names:
                names.append(key)
    columns = {n: tuple(repr(p.get(n)) for p in params) for n in names}
    dropped: list[str] = []
    for i, name in enumerate(names):
        if len(set(columns[name])) < 2:
            continue
        for earlier in names[:i]:
            if earlier not in dropped and columns[earlier] == columns[name]:
                dropped.append(name)
                break
    return dropped
