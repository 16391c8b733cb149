"""The recorder drops only the bad value (issue 16.5): a value ``rec.log`` cannot stash is
recorded as missing with one warning, and the step and the other values of the flush window
are kept. One test per kind of bad value."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import runlint

STEPS = 30
BAD_AT = 15


def _bad(kind: str) -> dict[str, Any]:
    if kind == "meta-device":
        return {"bad": torch.tensor(1.0, device="meta")}
    if kind == "string":
        return {"bad": "fast"}
    if kind == "list":
        return {"bad": [1.0, 2.0]}
    if kind == "non-finite":
        return {"bad": float("nan")}
    if kind == "requires-grad":
        return {"bad": torch.ones(1, requires_grad=True).sum() * 2}
    if kind == "10k-keys":
        return {f"key{i}": 1.0 for i in range(10_000)}
    raise AssertionError(kind)


def _record(logdir: Path, kind: str) -> list[str]:
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, logdir, meta={"num_classes": 2}, flush_every=100) as rec:
            for step in range(STEPS):
                loss = model(torch.randn(8, 4)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss, **(_bad(kind) if step == BAD_AT else {}))
    return [str(w.message) for w in caught if "runlint" in str(w.message)]


@pytest.mark.parametrize(
    "kind",
    [
        "meta-device",
        "string",
        "list",
        "non-finite",
        "requires-grad",
        "10k-keys",
    ],
)
def test_a_bad_value_is_dropped_alone(tmp_path: Path, kind: str, one_torch_thread: None) -> None:
    messages = _record(tmp_path / "run", kind)
    run = runlint.load_run(tmp_path / "run")
    assert len(run.steps) == STEPS  # every step kept
    assert run.steps["loss"].notna().all()  # and every other value of the window
    logged = {k for k in _bad(kind)}
    kept = [c for c in run.steps.columns if c in logged]
    if kind == "10k-keys":  # names beyond max_keys (1000 with the loss) are dropped, once said
        assert len(messages) == 1 and "max_keys" in messages[0]
        assert len(kept) == 999 and all(run.logged("steps", c).sum() == 1 for c in kept[:50])
    elif kind in ("non-finite", "requires-grad"):  # values that can be stashed
        assert messages == [] and len(kept) == len(logged)
        assert all(run.logged("steps", c).sum() == 1 for c in kept[:50])
        if kind == "non-finite":
            assert np.isnan(run.steps.loc[BAD_AT, "bad"])
    else:  # recorded as missing, with one warning naming it
        assert len(messages) == 1 and "bad" in messages[0]
        assert all(not run.logged("steps", c).any() for c in kept)
