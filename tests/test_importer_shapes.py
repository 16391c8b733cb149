"""The shapes real loggers write: sparse rows, summary rows, test rows, evaluations mid-epoch.

Generated with hypothesis for each format. Whatever the shape, what was not logged stays
missing (never a NaN loss, never a non-finite finding), summaries and test metrics stay out of
the curves, and every evaluation is a row of ``epochs`` with the epoch it was logged at.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runlint.rules.rl103_non_finite_loss import NonFiniteLoss
from runlint.rules.rl202_lr_too_high import LrTooHigh
from test_importers import _event, _file

from runlint.check.engine import Checker
from runlint.run import load_run

SHAPES = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
losses = st.floats(0.01, 5.0, allow_nan=False)


def _judged(path: Path) -> list[str]:
    """Codes the non-finite and explosion rules report on the run at ``path``."""
    result = Checker([NonFiniteLoss(), LrTooHigh()]).check_path(path)
    assert result.status in ("ok", "incomplete"), result.error
    return [f.code for f in result.findings if "nan" in f.message or "inf" in f.message]


@st.composite
def lightning_logs(draw: st.DrawFn) -> tuple[str, int, int, bool]:
    """A metrics.csv: per-step train rows, a val row per epoch (own rows, train cells empty),
    a test row at the end; columns in any order, LF or CRLF."""
    epochs = draw(st.integers(1, 6))
    per_epoch = draw(st.integers(1, 5))
    columns = draw(st.permutations(["epoch", "step", "train_loss", "val_loss", "test_loss"]))
    rows: list[dict[str, Any]] = []
    step = 0
    for epoch in range(epochs):
        for _ in range(per_epoch):
            step += 1
            rows.append({"epoch": epoch, "step": step, "train_loss": draw(losses)})
        rows.append({"epoch": epoch, "step": step, "val_loss": draw(losses)})
    test = draw(st.booleans())
    if test:
        rows.append({"epoch": epochs, "step": step, "test_loss": draw(losses)})
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [",".join(columns)]
    lines += [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    return newline.join(lines) + newline, epochs * per_epoch, epochs, test


@SHAPES
@given(log=lightning_logs())
def test_sparse_lightning_rows_are_missing_values_not_nan(
    log: tuple[str, int, int, bool], tmp_path_factory: Any
) -> None:
    text, train_points, epochs, test = log
    folder = tmp_path_factory.mktemp("pl")
    (folder / "metrics.csv").write_bytes(text.encode())
    run = load_run(folder)
    assert int(run.logged("steps", "loss").sum()) == train_points
    assert run.steps["loss"].notna().sum() == train_points
    assert len(run.epochs) == epochs and run.epochs["val_loss"].notna().all()
    assert "test_loss" not in run.steps.columns and "test_loss" not in run.epochs.columns
    assert ("test_loss" in run.meta["summary"]) == test
    assert run.epochs["train_loss"].notna().all()  # each epoch's mean training loss
    assert _judged(folder) == []


@st.composite
def trainer_states(draw: st.DrawFn) -> tuple[dict[str, Any], int, list[float]]:
    """A trainer_state.json: losses every few steps with fractional epochs, evaluations on
    their own schedule, maybe the end-of-training summary and a repeated final evaluation."""
    steps_per_epoch = draw(st.integers(10, 50))
    total = steps_per_epoch * draw(st.integers(1, 4))
    log_every = draw(st.integers(1, 20))
    eval_every = draw(st.integers(5, total))
    history: list[dict[str, Any]] = []
    evals: list[float] = []
    for step in range(1, total + 1):
        epoch = round(step / steps_per_epoch, 4)
        if step % log_every == 0:
            history.append({"epoch": epoch, "loss": draw(losses), "step": step})
        if step % eval_every == 0:
            history.append({"epoch": epoch, "eval_loss": draw(losses), "step": step})
            evals.append(epoch)
    if draw(st.booleans()):
        history.append(
            {
                "epoch": total / steps_per_epoch,
                "step": total,
                "train_loss": 0.5,
                "train_runtime": 12.5,
                "total_flos": 1e12,
            }
        )
        if evals and draw(st.booleans()):
            history.append({**next(e for e in reversed(history) if "eval_loss" in e)})
    state = {
        "log_history": history,
        "global_step": total,
        "max_steps": total,
        "logging_steps": log_every,
    }
    return state, total // log_every, evals


@SHAPES
@given(drawn=trainer_states())
def test_hf_evaluations_are_rows_at_their_fractional_epoch_and_summaries_stay_apart(
    drawn: tuple[dict[str, Any], int, list[float]], tmp_path_factory: Any
) -> None:
    state, loss_points, evals = drawn
    folder = tmp_path_factory.mktemp("hf")
    (folder / "trainer_state.json").write_text(json.dumps(state))
    if not loss_points and not evals:
        return
    run = load_run(folder)
    assert int(run.logged("steps", "loss").sum()) == loss_points
    if evals:
        assert len(run.epochs) == len(evals)
        elapsed = run.epochs["elapsed_epochs"].tolist()
        assert all(math.isclose(a, b) for a, b in zip(elapsed, evals, strict=True))
    assert "train_runtime" not in run.steps.columns and "total_flos" not in run.steps.columns
    assert _judged(folder) == []


@st.composite
def tensorboard_logs(draw: st.DrawFn) -> tuple[bytes, int]:
    """Event files where each tag has its own steps (a val point every few train points) and
    HF's end-of-run summary tags at the last step."""
    n = draw(st.integers(8, 60))
    every = draw(st.integers(2, 10))
    events = [_event(s, "train/loss", draw(losses)) for s in range(n)]
    events += [_event(s, "eval/loss", draw(losses)) for s in range(every, n, every)]
    if draw(st.booleans()):
        events += [_event(n, "train/train_loss", 0.4), _event(n, "train/total_flos", 1e12)]
    order = draw(st.permutations(range(len(events))))
    return _file([events[i] for i in order]), n


@SHAPES
@given(drawn=tensorboard_logs())
def test_tensorboard_tags_logged_at_their_own_steps_are_sparse_not_nan(
    drawn: tuple[bytes, int], tmp_path_factory: Any
) -> None:
    data, n = drawn
    folder = tmp_path_factory.mktemp("tb")
    (folder / "events.out.tfevents.1.host").write_bytes(data)
    run = load_run(folder)
    assert int(run.logged("steps", "loss").sum()) == n
    assert "train_train_loss" not in run.steps.columns
    assert _judged(folder) == []
