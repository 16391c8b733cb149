"""Helpers shared by the loader/engine/CLI tests: real recorded runs and synthesized ones.

``record_tiny`` trains a tiny model on CPU with ``runlint.record``; ``write_run`` writes the
recorder's on-disk format with pyarrow directly (for many runs, NaN losses, parts-only runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from runlint.schema.layout import FORMAT_NAME, FORMAT_VERSION, compact_name, part_name


def record_tiny(root: Path, *, lr: float = 0.1, nan_at: int | None = None) -> Path:
    """A real recorded run: a 2-layer MLP on 3 generated classes, 3 epochs of 8 steps."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x = torch.randn(256, 8)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    import runlint

    with runlint.record(model, opt, root, meta={"num_classes": 3, "batch_size": 32}) as rec:
        step = 0
        for _ in range(3):
            for i in range(0, 256, 32):
                loss = torch.nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                logged = loss if nan_at is None or step < nan_at else loss * float("nan")
                rec.log(loss=logged)
                step += 1
            rec.log_epoch(train_loss=loss.item(), val_loss=loss.item())
    return root


def write_run(
    root: Path,
    *,
    steps: int = 200,
    layers: int = 3,
    every: int = 10,
    loss: np.ndarray | None = None,
    complete: bool = True,
    parts: bool = False,
    meta: dict[str, Any] | None = None,
    write_meta: bool = True,
    ranks: int = 1,
    seed: int = 0,
) -> Path:
    """A run in the recorder's format, written with pyarrow (compacted, or as parts)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    step = np.arange(steps, dtype=np.int64)
    if loss is None:
        loss = 2.3 * np.exp(-step / max(steps / 3, 1)) + 0.1 + 0.02 * rng.standard_normal(steps)
    probe = step[::every]
    names = [f"layers.{i}.weight" for i in range(layers)]
    tables: dict[str, dict[str, Any]] = {}
    for rank in range(ranks):
        tables[f"steps/{rank}"] = {
            "step": step,
            "rank": np.full(steps, rank),
            "micro": np.zeros(steps, dtype=np.int64),
            "time": step * 0.01,
            "loss": np.asarray(loss, dtype=float),
        }
        tables[f"groups/{rank}"] = {
            "step": step,
            "rank": np.full(steps, rank),
            "group": np.zeros(steps, dtype=np.int64),
            "lr": np.full(steps, 0.1),
            "momentum": np.full(steps, 0.9),
            "weight_decay": np.zeros(steps),
        }
        n = probe.size * layers
        tables[f"params/{rank}"] = {
            "step": np.repeat(probe, layers),
            "rank": np.full(n, rank),
            "param": np.tile(np.array(names, dtype=object), probe.size),
            "grad_norm": rng.uniform(0.1, 1.0, n),
            "param_norm": rng.uniform(5.0, 10.0, n),
            "update_norm": rng.uniform(0.005, 0.01, n),
            "update_ratio": rng.uniform(5e-4, 2e-3, n),
        }
        tables[f"activations/{rank}"] = {
            "step": np.repeat(probe, layers),
            "rank": np.full(n, rank),
            "module": np.tile(
                np.array([f"act{i}" for i in range(layers)], dtype=object), probe.size
            ),
            "kind": np.full(n, "ReLU", dtype=object),
            "mean": rng.uniform(0.1, 0.5, n),
            "std": rng.uniform(0.5, 1.0, n),
            "saturated": np.zeros(n),
            "dead": rng.uniform(0.0, 0.2, n),
            "dead_units": np.zeros(n),
        }
    for key, columns in tables.items():
        table, rank = key.split("/")
        arrow = pa.table(columns)
        if parts:
            (root / "parts").mkdir(exist_ok=True)
            half = arrow.num_rows // 2
            pq.write_table(arrow.slice(0, half), root / "parts" / part_name(table, int(rank), 0))
            pq.write_table(arrow.slice(half), root / "parts" / part_name(table, int(rank), 1))
        else:
            pq.write_table(arrow, root / compact_name(table, int(rank)))
    if write_meta:
        doc = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "complete": complete,
            "meta": {"num_classes": 10, "batch_size": 64, **(meta or {})},
        }
        (root / "meta.json").write_text(json.dumps(doc))
    return root


def test_write_run_is_readable(tmp_path: Path) -> None:
    import runlint

    run = runlint.load_run(write_run(tmp_path / "r", steps=50, layers=2))
    assert run.steps["loss"].size == 50
    assert set(run.params["param"]) == {"layers.0.weight", "layers.1.weight"}
