"""A Ray Tune search whose broken trials runlint stops (``runlint[ray]``).

    python examples/tune_stop_broken_trials.py                 # 8 trials, lr over [1e-3, 30]
    python examples/tune_stop_broken_trials.py --address auto  # the same on a Ray cluster

Each trial trains a 2-layer MLP on generated 4-class data and records its run with
``runlint.record(..., check=True)`` into its own trial folder; after each epoch it reports its
validation loss with ``report_fields(rec)``: what its live check knows. ``RunlintStopper``
stops the trials whose check found an error (here the learning rates that make the loss
explode) at that report; the others train all their epochs. ``runlint sweep`` reads the
experiment folder afterwards, the trials' runs included.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch
from ray import tune
from torch import nn

import runlint
from runlint.integrations.ray import RunlintStopper, report_fields


def data(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of the task (the same labelling rule for every seed), drawn with ``seed``."""
    w = torch.randn(20, 4, generator=torch.Generator().manual_seed(1234))
    x = torch.randn(n, 20, generator=torch.Generator().manual_seed(seed))
    return x, (x @ w).argmax(1)


def train(config: dict[str, Any]) -> None:
    """One trial: ``config["lr"]``, ``config["epochs"]``; ``config["wait"]`` seconds at most
    for the live check of each epoch before reporting (0 in a real search)."""
    logging.getLogger("runlint.live").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = data(0, 512)
    xv, yv = data(1, 256)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    logdir = Path(tune.get_context().get_trial_dir() or os.getcwd()) / "run"
    check = runlint.LiveCheck(mode="thread")
    with runlint.record(model, opt, logdir, meta={"num_classes": 4}, check=check) as rec:
        for _ in range(config["epochs"]):
            for i in range(0, len(x), 32):
                loss = loss_fn(model(x[i : i + 32]), y[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
            with torch.no_grad():
                val = loss_fn(model(xv), yv).item()
            rec.log_epoch(train_loss=loss.item(), val_loss=val)
            fields = report_fields(rec, wait=config.get("wait", 0.0))
            tune.report({"val_loss": val if math.isfinite(val) else 1e30, **fields})


def search(lrs: Any, epochs: int, storage: str, *, wait: float = 0.0) -> tune.ResultGrid:
    """Run the search over ``lrs`` (a Tune search space or ``tune.grid_search``)."""
    tuner = tune.Tuner(
        train,
        param_space={"lr": lrs, "epochs": epochs, "wait": wait},
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=1),
        run_config=tune.RunConfig(
            name="stop-broken-trials", storage_path=storage, stop=RunlintStopper(), verbose=0
        ),
    )
    return tuner.fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--storage", default=str(Path("logs/tune").resolve()))
    parser.add_argument("--address", default=None, help="a Ray cluster (default: a local Ray)")
    args = parser.parse_args()
    import ray

    ray.init(address=args.address)
    lrs = tune.grid_search([0.003, 0.03, 0.1, 0.3, 1.5, 4.0, 10.0, 25.0])
    results = search(lrs, args.epochs, args.storage, wait=5.0)
    rows = []
    for i in range(len(results)):
        r = results[i]
        rows.append(((r.config or {}).get("lr", math.nan), r.metrics or {}))
    for lr, m in sorted(rows, key=lambda row: row[0]):
        end = f"stopped: {m.get('runlint_reason', '')[:70]}" if m.get("runlint_stop") else "done"
        print(f"lr {lr:<6g} epochs {m.get('training_iteration')}  {end}")
    best = results.get_best_result()
    lr, val = (best.config or {}).get("lr"), (best.metrics or {}).get("val_loss", math.nan)
    print(f"best: lr {lr} val_loss {val:.4f}")


if __name__ == "__main__":
    main()
