"""No hidden host syncs: a CUDA run recorded under ``torch.cuda.set_sync_debug_mode("error")``.

Only flushes may sync (they copy the stash to the host), so the mode is relaxed around them.
Probes turn exceptions into warnings, so a sync inside a probe shows up as a runlint warning and
a probe in ``probes_off``: the test fails on either.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import runlint
from runlint.recorder import Recorder

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

STEPS = 300


@contextmanager
def sync_debug(mode: str) -> Iterator[None]:
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def test_no_host_sync_outside_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flush = Recorder._flush
    flushes: list[int] = []

    def relaxed_flush(self: Recorder, **kwargs: Any) -> None:
        flushes.append(self.step)
        with sync_debug("default"):
            flush(self, **kwargs)

    monkeypatch.setattr(Recorder, "_flush", relaxed_flush)
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(32, 64),
        nn.Tanh(),
        nn.Linear(64, 64),
        nn.GELU(),
        nn.Linear(64, 128),  # over max_elems: its update is measured on a strided sample
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.Sigmoid(),
        nn.Linear(64, 10),
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, foreach=True)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5)
    x = torch.randn(STEPS, 64, 32, device=device)
    y = torch.randint(0, 10, (STEPS, 64), device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with (
            runlint.record(
                model,
                opt,
                tmp_path / "run",
                stats_every=10,
                hist_every=50,
                weights_every=100,
                flush_every=100,
                flush_secs=1e9,
            ) as rec,
            sync_debug("error"),
        ):
            for step in range(STEPS):
                loss = nn.functional.cross_entropy(model(x[step]), y[step])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rec.log(loss=loss, scaled=loss * 2)
                sched.step()
    messages = [str(w.message) for w in caught if "runlint" in str(w.message)]
    assert messages == []
    assert flushes[:3] == [100, 200, 300]
    run = runlint.load_run(tmp_path / "run")
    assert run.meta["probes_off"] == {}
    assert run.meta["device"].startswith("cuda")
    assert list(run.steps.index) == list(range(STEPS))
    assert run.steps["loss"].notna().all()
    assert sorted(set(run.params["step"])) == list(range(0, STEPS, 10))
    assert sorted(set(run.activations["step"])) == list(range(0, STEPS, 10))
    assert sorted(set(run.histograms["step"])) == list(range(0, STEPS, 50))
    assert list(run.weights["step"]) == [0, 100, 200, STEPS]
    assert run.groups["lr"].iloc[-1] == pytest.approx(0.05 / 4)
