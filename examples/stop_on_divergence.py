"""A training script that stops itself when its run diverges.

    python examples/stop_on_divergence.py            # lr 2: the loss overflows, training stops
    python examples/stop_on_divergence.py --lr 0.05  # healthy: runs all its epochs

``runlint.record(..., stop_on="error")`` checks the run at each flush (here every 20 steps and
at each epoch) in a checker process, off the training thread; each new finding is one log line
(``runlint.live`` logger), and a finding of ``error`` severity (a non-finite loss, an exploded
run, a loss pinned at chance) sets ``rec.should_stop``, which the loop tests at the end of each
step. The run directory is closed and loadable; ``meta.json`` says why it stopped, and
``runlint check`` repeats it.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
from torch import nn

import runlint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--logdir", default="logs/stop-on-divergence")
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s %(message)s")  # runlint's lines: warnings, errors

    torch.manual_seed(0)
    x = torch.randn(2048, 20)
    y = x[:, :4].argmax(1)  # 4 classes
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    with runlint.record(
        model,
        opt,
        args.logdir,
        meta={"num_classes": 4, "batch_size": 64},
        overwrite=True,
        flush_every=20,
        stop_on="error",
    ) as rec:
        for _ in range(args.epochs):
            for i in range(0, len(x), 64):
                loss = nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
                time.sleep(0.002)  # stands in for a real model's step time
                if rec.should_stop:
                    break
            if rec.should_stop:
                break
            rec.log_epoch(train_loss=loss.item())
    stopped = runlint.load_run(args.logdir).meta.get("stopped")
    if stopped:
        print(f"stopped at step {stopped['step']} of {args.epochs * 32}: {stopped['reason']}")
    else:
        print(f"trained all {rec.step} steps")


if __name__ == "__main__":
    main()
