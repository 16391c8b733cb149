"""Crash safety: a training process killed with SIGKILL keeps every step flushed before the kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq

import runlint

CHILD = textwrap.dedent(
    """
    import sys, time, torch, runlint
    from torch import nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with runlint.record(model, opt, sys.argv[1], flush_every=5, stats_every=2) as rec:
        seq = 0
        while True:
            loss = model(torch.randn(8, 8)).pow(2).mean()  # a flush falls due here: whole steps
            if rec._writer._seq != seq:
                seq = rec._writer._seq
                rec._writer.drain()  # this flush is on disk: steps 0 .. rec.step - 1 are logged
                print(rec.step, flush=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
            time.sleep(0.002)
    """
)


def test_sigkilled_run_keeps_every_flushed_step(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    logdir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, str(script), str(logdir)], stdout=subprocess.PIPE, text=True
    )
    flushed = 0
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 240
        while flushed < 30 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            flushed = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert flushed >= 30, "the child never flushed 30 steps"

    parts = sorted((logdir / "parts").glob("*.parquet"))
    assert parts, "no part files on disk"
    for part in parts:  # every part on disk is complete (atomic renames, no torn footers)
        pq.read_table(part)

    run = runlint.load_run(logdir)
    assert not run.complete
    steps = list(run.steps.dropna(subset=["loss"]).index)
    assert steps == list(range(len(steps)))
    assert len(steps) >= flushed
    assert run.steps["loss"].iloc[:flushed].notna().all()
    assert run.meta["steps"] >= flushed and run.meta["batch_size"] == 8
    assert set(run.params["step"]) >= set(range(0, flushed, 2))
