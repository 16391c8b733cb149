"""Import a Hugging Face Trainer output folder: ``trainer_state.json`` and ``config.json``.

The state is read from the output folder or from its latest ``checkpoint-N/``;
``training_args.bin`` is a pickle and is never opened. The Trainer logs the *average* training
loss of the last ``logging_steps`` steps at step ``s``; it lands on step ``s - 1`` (the last step
it covers). Unless ``logging_first_step`` was on, the first logged loss is such an average, and
``meta["first_loss_is_average"]`` says so, so that rules about the initial loss do not guess.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from runlint.run import limits
from runlint.run.importers.build import scalar_tables, with_counts
from runlint.run.views import NothingLogged, Run, RunError, from_tables

__all__ = ["checkpoints", "load", "state_file"]

STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_SUMMARY_KEYS = ("train_runtime", "total_flos", "train_samples_per_second")
_EVAL_PREFIXES = ("eval_", "test_", "predict_")
_CLASSIFIERS = (
    "ForSequenceClassification",
    "ForTokenClassification",
    "ForImageClassification",
    "ForAudioClassification",
    "ForMultipleChoice",
    "ForVideoClassification",
)
_LANGUAGE_MODELS = ("LMHeadModel", "ForCausalLM", "ForMaskedLM", "ForConditionalGeneration")


def checkpoints(path: Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` folders of an output folder, by ``N``."""
    found = []
    try:
        entries = list(path.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = _CHECKPOINT.match(entry.name)
        if m and entry.is_dir():
            found.append((int(m[1]), entry))
    return sorted(found)


def state_file(path: Path) -> Path | None:
    """The trainer_state.json to read: the output folder's, else the latest checkpoint's."""
    if (path / STATE).exists() and not (path / STATE).is_dir():  # a FIFO too: read, refused
        return path / STATE
    for _, folder in reversed(checkpoints(path)):
        if (folder / STATE).is_file():
            return folder / STATE
    return None


def load(path: Path) -> Run:
    """Read a Trainer output folder (or a checkpoint folder) into a ``Run``."""
    if path.is_file():
        path = path.parent
    file = state_file(path)
    if file is None:
        raise RunError(f"{path}: no {STATE} in the folder or its checkpoint-N/ folders")
    state = _read_json(path, file)
    history = state.get("log_history")
    if not isinstance(history, list):
        raise RunError(f"{path}: {_rel(path, file)} has no log_history list")
    rows, summary = _history_rows(history)
    if not rows:
        raise NothingLogged(
            f"{path}: {_rel(path, file)} has no logged metrics yet (log_history is empty)"
        )
    long = pd.DataFrame(rows, columns=["name", "step", "value", "progress"])
    scalars = scalar_tables(long)
    raw = scalars.raw
    meta, provenance = _state_meta(state, history, _rel(path, file))
    config_meta, config_prov = _config_meta(path, file.parent)
    for key, value in config_meta.items():
        meta.setdefault(key, value)
        provenance.setdefault(key, config_prov[key])
    meta.update(
        {
            "provenance": provenance,
            "imported_from": "hf",
            "imported_names": scalars.mapping,
            "summary": {**scalars.summary, **summary},
            "import": {"state_file": _rel(path, file), "log_entries": len(history)},
        }
    )
    global_step, max_steps = state.get("global_step"), state.get("max_steps")
    complete = bool(summary) or (
        isinstance(global_step, int) and isinstance(max_steps, int) and 0 < max_steps <= global_step
    )
    return from_tables(path, with_counts(meta, raw), raw, source="hf", complete=complete)


def _read_json(path: Path, file: Path) -> dict[str, Any]:
    try:
        doc = json.loads(limits.read_text(file))
    except limits.TooLarge as exc:
        raise RunError(f"{path}: {exc}") from None
    except OSError as exc:
        raise RunError(f"{path}: cannot read {_rel(path, file)} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise RunError(f"{path}: {_rel(path, file)} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RunError(f"{path}: {_rel(path, file)} is not a JSON object")
    return doc


def _rel(path: Path, file: Path) -> str:
    try:
        return str(file.relative_to(path))
    except ValueError:
        return file.name


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _history_rows(
    history: list[Any],
) -> tuple[list[tuple[str, int, float, float | None]], dict[str, Any]]:
    """Long ``(name, step, value, epoch)`` rows of the log history (``epoch``: the fractional
    epoch the Trainer logs with each entry); the end-of-training summary is kept apart."""
    rows: list[tuple[str, int, float, float | None]] = []
    summary: dict[str, Any] = {}
    for entry in history:
        if not isinstance(entry, dict) or not isinstance(entry.get("step"), int):
            continue
        if any(k in entry for k in _SUMMARY_KEYS):
            summary = {k: v for k, v in entry.items() if _number(v) is not None}
            continue
        is_eval = any(k.startswith(_EVAL_PREFIXES) for k in entry)
        step = entry["step"] if is_eval else entry["step"] - 1  # the last step a loss covers
        progress = _number(entry.get("epoch"))
        for key, value in entry.items():
            number = _number(value)
            if key in ("step", "epoch") or number is None:
                continue
            if is_eval and not key.startswith(_EVAL_PREFIXES):
                continue
            rows.append((key, max(step, 0), number, progress))
    return rows, summary


def _state_meta(
    state: dict[str, Any], history: list[Any], source: str
) -> tuple[dict[str, Any], dict[str, str]]:
    meta: dict[str, Any] = {}
    provenance: dict[str, str] = {}
    batch = state.get("train_batch_size")
    if isinstance(batch, int) and batch > 0:
        meta["batch_size"] = batch
        provenance["batch_size"] = f"{source} train_batch_size (per device, one micro-batch)"
    interval = state.get("logging_steps")
    loss_steps = [
        e["step"]
        for e in history
        if isinstance(e, dict) and "loss" in e and isinstance(e.get("step"), int)
    ]
    if isinstance(interval, (int, float)) and interval > 0:
        if interval < 1 and isinstance(state.get("max_steps"), int):  # a ratio of all steps
            interval = math.ceil(interval * state["max_steps"])
        meta["loss_logging_interval"] = int(interval)
        provenance["loss_logging_interval"] = f"{source} logging_steps"
        if loss_steps:
            meta["first_loss_is_average"] = bool(interval > 1 and loss_steps[0] > 1)
            provenance["first_loss_is_average"] = (
                f"{source}: first loss logged at step {loss_steps[0]} "
                f"with logging_steps={int(interval)}"
            )
    meta["hf_state"] = {
        k: state[k]
        for k in (
            "global_step",
            "max_steps",
            "epoch",
            "num_train_epochs",
            "eval_steps",
            "save_steps",
            "best_metric",
            "best_model_checkpoint",
        )
        if k in state
    }
    return meta, provenance


def _config_meta(path: Path, state_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Number of classes from a ``config.json``: ``num_labels`` of a classifier, ``vocab_size``
    of a language model (its loss is a softmax over the vocabulary)."""
    for folder in dict.fromkeys((path, state_dir)):
        file = folder / "config.json"
        try:
            config = json.loads(limits.read_meta_bytes(file))
        except (OSError, ValueError):
            continue
        if not isinstance(config, dict):
            continue
        where = _rel(path, file)
        archs = [a for a in config.get("architectures") or [] if isinstance(a, str)]
        problem = config.get("problem_type")
        meta: dict[str, Any] = {"hf_architectures": archs} if archs else {}
        prov: dict[str, str] = {"hf_architectures": f"{where} architectures"} if archs else {}
        if any(a.endswith(_CLASSIFIERS) for a in archs) and problem in (
            None,
            "single_label_classification",
        ):
            labels = config.get("id2label")
            count = len(labels) if isinstance(labels, dict) and labels else config.get("num_labels")
            how = f"{where} num_labels"
            if count is None:  # transformers leaves its default of two labels out
                count, how = 2, f"{where} (no num_labels: transformers' default, 2)"
            if isinstance(count, int) and count > 1:
                meta["num_classes"], meta["loss"] = count, "cross_entropy"
                prov["num_classes"] = how
                prov["loss"] = f"{where} architectures (softmax classifier)"
        elif any(a.endswith(_LANGUAGE_MODELS) for a in archs):
            vocab = config.get("vocab_size")
            if isinstance(vocab, int) and vocab > 1:
                meta["num_classes"], meta["loss"] = vocab, "cross_entropy"
                prov["num_classes"] = f"{where} vocab_size (language model)"
                prov["loss"] = f"{where} architectures (softmax over the vocabulary)"
        elif problem == "regression":
            meta["loss"], prov["loss"] = "mse", f"{where} problem_type"
        return meta, prov
    return {}, {}
