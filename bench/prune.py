"""Pruning a search with runlint's live findings: the same Optuna study with and without it.

    python bench/prune.py [--trials 16] [--epochs 10] [--seed 0] [--inner none|median]

Each trial trains a 2-layer MLP (SGD, momentum 0.9) on generated 4-class data for ``--epochs``
epochs, recorded with ``runlint.record(..., check=True)``; the learning rate is sampled
log-uniformly over [1e-3, 30], wide enough that the top of the range diverges (the loss
explodes, then overflows to NaN). The objective is the last epoch's validation loss. The study
runs twice with the same sampler seed: with the inner pruner alone (``--inner``: none, or
Optuna's ``MedianPruner``) and with ``RunlintPruner`` wrapping it, which prunes a trial at the
first epoch whose live check has an error-severity finding. Each report waits for the checks of
the epoch's flush (``report(..., wait=30)``), so both studies see the same decisions on a loaded
machine; a trial's data and initial weights depend only on its number.

It prints, side by side: the trials pruned (by runlint, or by the inner pruner, whose medians
change when runlint prunes trials earlier), the epochs trained (and those saved), the trials
that ended with a non-finite loss, the best trial and its value (which must be the same), and
for each trial pruned with runlint the epoch, who pruned it and why, and what became of it in
the study without runlint.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import runlint  # noqa: E402
from runlint.integrations.optuna import REASON_ATTR, RunlintPruner, report  # noqa: E402

LR_RANGE = (1e-3, 30.0)


@dataclass
class Outcome:
    """One study: per trial its lr, epochs trained, final state and value."""

    name: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def pruned(self) -> list[dict[str, Any]]:
        return [t for t in self.trials if t["state"] == "PRUNED"]

    @property
    def epochs(self) -> int:
        return sum(t["epochs"] for t in self.trials)

    @property
    def best(self) -> dict[str, Any] | None:
        done = [t for t in self.trials if t["state"] == "COMPLETE" and math.isfinite(t["value"])]
        return min(done, key=lambda t: t["value"]) if done else None


def data(seed: int, n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of the task (the same labelling rule for every seed), drawn with ``seed``."""
    w = torch.randn(20, 4, generator=torch.Generator().manual_seed(1234))
    x = torch.randn(n, 20, generator=torch.Generator().manual_seed(seed))
    return x, (x @ w).argmax(1)


def objective(root: Path, epochs: int, wait: float) -> Any:
    """The study's objective; the trial's runs go under ``root/<number>``."""
    x, y = data(0)
    xv, yv = data(1, 256)

    def run(trial: optuna.trial.Trial) -> float:
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        torch.manual_seed(trial.number)
        model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        val = math.nan
        trial.set_user_attr("epochs", 0)
        with runlint.record(
            model,
            opt,
            root / f"trial-{trial.number}",
            meta={"num_classes": 4, "batch_size": 32},
            check=runlint.LiveCheck(mode="thread"),
            overwrite=True,
        ) as rec:
            for epoch in range(epochs):
                for i in range(0, len(x), 32):
                    loss = loss_fn(model(x[i : i + 32]), y[i : i + 32])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    rec.log(loss=loss)
                with torch.no_grad():
                    val = loss_fn(model(xv), yv).item()
                rec.log_epoch(train_loss=loss.item(), val_loss=val)
                trial.set_user_attr("epochs", epoch + 1)
                trial.set_user_attr("final_loss", loss.item())
                report(trial, rec, val, epoch, wait=wait)
        return val

    return run


def study(
    name: str,
    pruner: optuna.pruners.BasePruner,
    *,
    trials: int,
    epochs: int,
    seed: int,
    root: Path,
    wait: float = 30.0,
) -> Outcome:
    """Run one study and say what happened to each trial."""
    out = Outcome(name)
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed), pruner=pruner)
    t0 = time.perf_counter()
    s.optimize(objective(root / name, epochs, wait), n_trials=trials, catch=())
    out.seconds = time.perf_counter() - t0
    for t in s.trials:
        value = t.value if t.value is not None else math.nan
        out.trials.append(
            {
                "number": t.number,
                "lr": t.params["lr"],
                "state": t.state.name,
                "epochs": int(t.user_attrs.get("epochs", 0)),
                "value": value,
                "finite": math.isfinite(float(t.user_attrs.get("final_loss", math.nan))),
                "why": t.user_attrs.get(REASON_ATTR, ""),
            }
        )
    return out


def compare(trials: int, epochs: int, seed: int, inner: str, root: Path) -> tuple[Outcome, ...]:
    def make() -> optuna.pruners.BasePruner | None:
        return optuna.pruners.MedianPruner() if inner == "median" else None

    base_pruner = make() or optuna.pruners.NopPruner()
    kw: dict[str, Any] = {"trials": trials, "epochs": epochs, "seed": seed, "root": root}
    base = study(f"inner-{inner}", base_pruner, **kw)
    ours = study(f"runlint+{inner}", RunlintPruner(make()), **kw)
    return base, ours


def show(base: Outcome, ours: Outcome, epochs: int) -> None:
    def best(o: Outcome) -> str:
        b = o.best
        return f"trial {b['number']} lr {b['lr']:.3g}: {b['value']:.4f}" if b else "none"

    n = len(base.trials)
    rows = [
        ("trials", n, len(ours.trials)),
        ("pruned", len(base.pruned), len(ours.pruned)),
        (
            "  by runlint",
            sum(bool(t["why"]) for t in base.pruned),
            sum(bool(t["why"]) for t in ours.pruned),
        ),
        ("epochs trained", f"{base.epochs} of {n * epochs}", f"{ours.epochs} of {n * epochs}"),
        (
            "ended non-finite",
            sum(not t["finite"] for t in base.trials),
            sum(not t["finite"] for t in ours.trials),
        ),
        ("best", best(base), best(ours)),
        ("wall s", f"{base.seconds:.1f}", f"{ours.seconds:.1f}"),
    ]
    print(f"{'':18}  {base.name:34}  {ours.name}")
    for label, a, b in rows:
        print(f"{label:18}  {a!s:34}  {b}")
    saved = base.epochs - ours.epochs
    print(f"epochs saved: {saved} of {base.epochs} ({100 * saved / max(base.epochs, 1):.0f}%)")
    same = base.best is not None and ours.best is not None
    same = same and base.best["number"] == ours.best["number"]  # type: ignore[index]
    print(f"best trial unchanged: {'yes' if same else 'NO'}")
    print(f"\ntrials pruned with {ours.name} (lr, epoch pruned at, by whom; in {base.name}):")
    by_number = {t["number"]: t for t in base.trials}
    for t in ours.pruned:
        other = by_number[t["number"]]
        if other["state"] == "PRUNED":
            then = f"pruned at epoch {other['epochs']}"
        elif not other["finite"]:
            then = "ended non-finite"
        else:
            then = f"ended at val {other['value']:.3g}"
        who = f"runlint: {t['why']}" if t["why"] else "the inner pruner"
        who = who if len(who) <= 80 else who[:77] + "..."
        head = f"  {t['number']:3d}  lr {t['lr']:<7.3g} epoch {t['epochs']:2d}/{epochs}"
        print(f"{head}  {then:22} {who}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--inner", choices=("none", "median"), default="none")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not "Trial 7 failed with value nan"
    logging.getLogger("runlint.live").setLevel(logging.CRITICAL)  # the bench prints the reasons
    torch.set_num_threads(1)
    print(
        f"{args.trials} trials x {args.epochs} epochs, lr log-uniform over {LR_RANGE}, "
        f"random sampler seed {args.seed}, inner pruner {args.inner}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        base, ours = compare(args.trials, args.epochs, args.seed, args.inner, Path(tmp))
    show(base, ours, args.epochs)


if __name__ == "__main__":
    main()
