"""SIGKILL at random moments, many during a flush: every run loads, no flushed step is lost, and
every step is whole (in every table that should have it) or absent.

Writers are forked from the warm zygote of ``test_one_writer``; each table write of a flush is
delayed by a seeded 0-4 ms, so that a good share of the kills land between the renames of one
flush — the moment a reader used to see one table of a flush without the others.
"""

from __future__ import annotations

import os
import random
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_one_writer import Zygote, shared_zygote

import runlint
from runlint.schema.layout import TABLES, flush_tables, parse_part

KILLS = 24
STATS, HIST, WEIGHTS, EPOCH = 2, 4, 5, 7

#: Records until killed; appends to ``progress`` the number of steps on disk after each flush.
KILLED = textwrap.dedent(
    f"""
    import os, random
    import runlint.recorder.writer as writer_module
    rng = random.Random(P["seed"])
    real = writer_module.write_table

    def slow(path, table, *, compact=True):  # widens the gaps between a flush's renames
        time.sleep(rng.uniform(0, 0.004))
        real(path, table, compact=compact)

    writer_module.write_table = slow
    torch.manual_seed(P["seed"])
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    progress = os.open(P["progress"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    with runlint.record(model, opt, P["logdir"], flush_every=P["flush_every"],
                        stats_every={STATS}, hist_every={HIST}, weights_every={WEIGHTS},
                        background=False, **P["options"]) as rec:
        os.write(progress, b"%d\\n" % rec.step)
        seq = rec._writer._seq
        while rec.step < P["steps"]:
            out = model(torch.randn(8, 8))  # a flush that fell due runs here
            if rec._writer._seq != seq:
                seq = rec._writer._seq
                os.write(progress, b"%d\\n" % rec.step)  # steps < rec.step are on disk
            loss = out.pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
            if rec.step % {EPOCH} == 0:
                rec.log_epoch(val_loss=loss)  # flushes now
                seq = rec._writer._seq
                os.write(progress, b"%d\\n" % rec.step)
    """
)


def _start(
    zygote: Zygote, logdir: Path, seed: int, steps: int = 10**6, **options: Any
) -> tuple[int, Path]:
    progress = logdir.with_name(logdir.name + ".progress")
    params = {
        "seed": seed,
        "logdir": str(logdir),
        "progress": str(progress),
        "flush_every": 3,
        "steps": steps,
        "options": options,
    }
    return zygote.run(KILLED, params), progress


def _durable(progress: Path) -> int:
    lines = progress.read_text().split()
    return int(lines[-1]) if lines else 0


def _cut_short(logdir: Path) -> tuple[bool, bool]:
    """Whether the kill left a flush with some of its tables only, or a half-written file."""
    half = any(p.name.endswith(".tmp") for p in logdir.rglob(".*"))
    flushes: dict[int, dict[str, Path]] = {}
    for path in (logdir / "parts").glob("*.parquet"):
        part = parse_part(path.name)
        if part:
            flushes.setdefault(part[2], {})[part[0]] = path
    cut = False
    for tables in flushes.values():
        expected = flush_tables(pq.read_schema(next(iter(tables.values()))).metadata)
        cut |= expected is not None and not set(expected) <= set(tables)
    return cut, half


def _partial_steps(run: Any) -> tuple[int, int]:
    """(steps missing from a table that should have them, the number of whole steps)."""
    raw = run.raw
    every = {"params": STATS, "activations": STATS, "histograms": HIST, "weights": WEIGHTS}
    seen = {
        name: set(map(int, raw[name]["step"])) if not raw[name].empty else set()
        for name in ("steps", "groups", *every)
    }
    if run.complete:  # close adds a snapshot of the weights after the last step
        seen["weights"].discard(run.meta["steps"])
    union = set().union(*seen.values())
    n = max(union) + 1 if union else 0
    partial = {s for s in range(n) if s not in seen["steps"] or s not in seen["groups"]}
    for name, k in every.items():
        partial |= {s for s in range(0, n, k) if s not in seen[name]}
        partial |= {s for s in seen[name] if s % k}
    if n:  # every step has its loss ("loss is nan" was the symptom of a cut flush)
        loss = run.steps["loss"]
        partial |= {int(s) for s in loss.index[loss.isna()]}
    epochs = set(map(int, raw["epochs"]["step"])) if not raw["epochs"].empty else set()
    partial |= epochs ^ set(range(EPOCH, n + 1, EPOCH))  # an epoch closes with its steps
    return len(partial), n


def test_sigkill_at_random_moments_leaves_whole_steps_only(tmp_path: Path) -> None:
    zygote = shared_zygote()
    rng = random.Random(20240611)
    totals = {"loadable": 0, "partial": 0, "lost": 0, "cut": 0, "half": 0, "resumed": 0}
    steps_kept = []
    for trial in range(KILLS):
        logdir = tmp_path / f"run-{trial:02d}"
        pid, progress = _start(zygote, logdir, seed=trial)
        deadline = time.monotonic() + 60
        while not progress.exists() or not progress.read_text():
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.002)
        time.sleep(rng.uniform(0.03, 0.4))
        os.kill(pid, signal.SIGKILL)
        assert zygote.wait(pid) == -signal.SIGKILL, "the writer ended before the kill"

        cut, half = _cut_short(logdir)
        totals["cut"] += cut or half
        totals["half"] += half
        run = runlint.load_run(logdir)  # raises if the run cannot be read
        totals["loadable"] += 1
        assert not run.complete
        partial, n = _partial_steps(run)
        totals["partial"] += partial
        totals["lost"] += max(0, _durable(progress) - n)
        steps_kept.append(n)

        if trial % 6 == 5:  # a killed run, cut flush and all, resumes where it stopped
            pid, _ = _start(zygote, logdir, seed=trial, steps=n + 5, resume=True)
            assert zygote.wait(pid) == 0
            resumed = runlint.load_run(logdir)
            assert _partial_steps(resumed) == (0, n + 5) and resumed.complete
            assert resumed.meta["resumed"] == [n]
            totals["resumed"] += 1

    summary = (
        f"{KILLS} kills: {totals['loadable']} loadable runs, {totals['partial']} partial steps, "
        f"{totals['lost']} flushed steps lost; {totals['cut']} kills inside a flush "
        f"({totals['half']} with a half-written file); {int(np.median(steps_kept))} steps kept "
        f"(median); {totals['resumed']} killed runs resumed whole"
    )
    print(summary)
    assert totals["loadable"] == KILLS and totals["partial"] == 0 and totals["lost"] == 0, summary
    assert totals["cut"] >= 3, f"too few kills landed inside a flush: {summary}"


@pytest.mark.usefixtures("one_torch_thread")
def test_a_flush_cut_between_its_renames_is_left_out_whole(tmp_path: Path) -> None:
    """The state a kill between two renames of one flush leaves: that flush is not read at all
    (its loss without its learning rate, or the other way round), the earlier ones are; a
    resumed recording deletes it and goes on from the last whole step."""
    import shutil

    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = runlint.record(model, opt, tmp_path / "live", flush_every=2, background=False)
    with rec:
        for _ in range(7):
            loss = model(torch.randn(4, 4)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
        killed = tmp_path / "killed"
        shutil.copytree(tmp_path / "live", killed, ignore=shutil.ignore_patterns(".*"))
    parts = sorted((killed / "parts").glob("*-r0-000002.parquet"))
    names = [p.name.split("-")[0] for p in parts]
    assert names == ["examples", "groups", "steps"]
    last = max(names, key=TABLES.index)  # renamed last (tables go in their order): never got there
    (killed / "parts" / f"{last}-r0-000002.parquet").unlink()

    run = runlint.load_run(killed)
    assert list(run.raw["steps"]["step"]) == [0, 1, 2, 3]  # flushes 0 and 1; not 2's 4 and 5
    assert list(run.raw["groups"]["step"]) == [0, 1, 2, 3]
    assert set(run.raw["params"]["step"]) == {0}

    with runlint.record(model, opt, killed, resume=True) as again:
        assert again.step == 4
        assert not (killed / "parts" / "steps-r0-000002.parquet").exists()
    assert list(runlint.load_run(killed).raw["steps"]["step"]) == [0, 1, 2, 3]
