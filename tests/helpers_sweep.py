"""Real searches for the sweep tests: Optuna studies in SQLite with fast objectives, and Ray
Tune experiment folders written in Ray's layout."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def loss_of(lr: float, wd: float = 1e-4, dropout: float = 0.2, lr_best: float = 1e-3) -> float:
    """A validation loss with its optimum at ``lr_best``, wd 1e-4 and dropout 0.2 (a bowl on
    the log scale of lr and wd, as the seed says they act)."""
    return (
        0.3
        + 0.15 * (math.log10(lr) - math.log10(lr_best)) ** 2
        + 0.05 * (math.log10(wd) + 4) ** 2
        + 0.5 * (dropout - 0.2) ** 2
    )


def curve(final: float, epochs: int, seed: int) -> list[float]:
    """A falling validation loss per epoch that ends near ``final``."""
    rng = random.Random(seed)
    return [
        final + 0.8 / (e + 1) ** 1.5 - 0.8 / epochs**1.5 + rng.gauss(0, 0.003)
        for e in range(epochs)
    ]


def optuna_study(
    db: Path,
    suggest: Callable[[Any], dict[str, float]],
    *,
    trials: int = 40,
    epochs: int = 6,
    name: str = "search",
    sampler: Any = None,
    pruner: Any = None,
    lr_best: float = 1e-3,
    diverge_above: float | None = None,
    attrs: Callable[[Any, dict[str, float]], None] | None = None,
    seed: int = 0,
) -> str:
    """A real Optuna study in ``db`` (SQLite): each trial reports its validation loss per epoch
    (``trial.report``) and returns its last one. A trial whose ``lr`` exceeds
    ``diverge_above`` diverges: NaN from its first epoch, trained to the end all the same."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db}"
    study = optuna.create_study(
        study_name=name,
        storage=url,
        direction="minimize",
        sampler=sampler or optuna.samplers.RandomSampler(seed=seed),
        pruner=pruner or optuna.pruners.NopPruner(),
        load_if_exists=True,
    )

    def objective(trial: Any) -> float:
        params = suggest(trial)
        if attrs is not None:
            attrs(trial, params)
        diverged = diverge_above is not None and params["lr"] > diverge_above
        final = loss_of(
            params["lr"], params.get("weight_decay", 1e-4), params.get("dropout", 0.2), lr_best
        )
        values = [math.nan] * epochs if diverged else curve(final, epochs, trial.number)
        for epoch, value in enumerate(values):
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return values[-1]

    study.optimize(objective, n_trials=trials, catch=())
    return url


def healthy(trial: Any) -> dict[str, float]:
    """The seed's search: lr and weight decay log-uniform, dropout uniform."""
    return {
        "lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def ray_experiment(
    root: Path,
    configs: Sequence[dict[str, Any]],
    results: Callable[[int, dict[str, Any]], list[float]],
    *,
    metric: str = "val_loss",
    name: str = "exp",
) -> Path:
    """A Ray Tune experiment folder in Ray 2.x's documented layout (what a Tuner writes):
    ``experiment_state-*.json``, one ``<trainable>_<id>_<n>_<tag>_<date>/`` per trial with
    ``params.json``, ``result.json`` (JSON lines) and ``progress.csv``, plus a ``tuner.pkl``
    that must never be opened (it holds bytes that are not a pickle at all)."""
    exp = root / name
    exp.mkdir(parents=True)
    (exp / "tuner.pkl").write_bytes(b"not a pickle: never to be loaded")
    trial_data = []
    t0 = 1_700_000_000.0
    for i, config in enumerate(configs):
        tid = f"abcde_{i:05d}"
        tag = ",".join(f"{k}={v:.4f}" for k, v in config.items() if isinstance(v, float))
        rel = f"trainable_{tid}_{i}_{tag}_2026-01-01_00-00-00"
        folder = exp / rel
        folder.mkdir()
        (folder / "params.json").write_text(json.dumps(config, indent=2))
        (folder / "params.pkl").write_bytes(b"\x80\x05never opened")
        values = results(i, config)
        rows = []
        for it, value in enumerate(values, start=1):
            rows.append(
                {
                    metric: value,
                    "timestamp": int(t0 + 10 * i + it),
                    "done": it == len(values),
                    "training_iteration": it,
                    "trial_id": tid,
                    "time_this_iter_s": 1.0,
                    "time_total_s": float(it),
                    "config": config,
                }
            )
        with (folder / "result.json").open("w") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
        keys = [k for k in rows[0] if k != "config"] if rows else [metric]
        lines = [",".join(keys)] + [",".join(str(r[k]) for k in keys) for r in rows]
        (folder / "progress.csv").write_text("\n".join(lines) + "\n")
        state = {
            "trial_id": tid,
            "config": config,
            "status": "TERMINATED",
            "relative_logdir": rel,
            "experiment_tag": f"{i}_{tag}",
            "storage": {"_type": "CLOUDPICKLE_FALLBACK", "value": "80059500"},
        }
        trial_data.append([json.dumps(state), json.dumps({"start_time": t0 + 10 * i})])
    doc = {
        "trial_data": trial_data,
        "runner_data": {"_metric": metric, "_stopper": {"_type": "CLOUDPICKLE_FALLBACK"}},
        "stats": {"start_time": t0},
    }
    (exp / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps(doc))
    return exp
