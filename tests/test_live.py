"""Live checking: the rules run at each flush while a real (tiny) model trains, and a stop policy
ends the training at a step boundary through the plain loop, the Lightning callback and the
Hugging Face callback.

The trainings are slowed a little (a few ms per step) so that the checker, a second process,
has time to start and answer while the run is still training: the stop must come before the
loop runs out of steps, and it is the check, not the end of the data, that ends it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import helpers_training as training
import pytest
import torch
from torch import nn

import runlint
from runlint.check.live import (
    CONFIRM_AFTER,
    WITHDRAW_AFTER,
    LiveCheck,
    LiveEvent,
    LiveState,
    RunChecker,
    StopPolicy,
    read_history,
)
from runlint.check.rule import Finding, Severity
from runlint.schema.layout import FINDINGS_FILE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_STEPS = 4000  # the loops' bound: a stop must come long before it
PAUSE = 0.004  # seconds per step: ~16 s at most, a stop comes within a few


def _diverging_loop(
    logdir: Path, lr: float, steps: int = MAX_STEPS, **options: Any
) -> runlint.Recorder:
    """A 20-32-4 MLP trained with SGD at ``lr``; leaves the loop when ``rec.should_stop``."""
    x, y = training.data(256)
    model = training.mlp(nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    with runlint.record(
        model, opt, logdir, meta={"num_classes": 4, "batch_size": 32}, flush_every=10, **options
    ) as rec:
        for step in range(steps):
            loss = training.train_step(rec, model, opt, x, y, step)
            if step % 8 == 7:
                rec.log_epoch(train_loss=loss)
            if rec.should_stop:
                break
            time.sleep(PAUSE)
    return rec


# -- the stop policy and the comparison of checks (no training) ---------------------------------
def _finding(code: str, severity: Severity = Severity.WARNING, where: str | None = None) -> Finding:
    return Finding(code, "some-rule", severity, "msg", "fix", "run", None, where, {})


def test_stop_on_parses_severities_codes_and_names() -> None:
    assert not StopPolicy.parse(None) and str(StopPolicy.parse(None)) == "never"
    error = StopPolicy.parse("error")
    assert error.matches(_finding("RL103", Severity.ERROR))
    assert not error.matches(_finding("RL202", Severity.WARNING))  # never on a warning unless asked
    codes = StopPolicy.parse(["rl2", "RL403"])
    assert codes.codes == ("RL2", "RL403")
    assert codes.matches(_finding("RL202")) and codes.matches(_finding("RL403"))
    assert not codes.matches(_finding("RL202", Severity.INFO))  # info never stops
    assert not codes.matches(_finding("RL501"))
    with pytest.raises(ValueError, match="stop_on"):
        StopPolicy.parse(3)
    with pytest.raises(ValueError, match="contradicts"):
        LiveCheck.of(False, stop_on="error")


def test_a_finding_is_reported_once_and_withdrawn_when_a_later_check_drops_it() -> None:
    state = LiveState(withdraw_after=1, confirm_after=1)
    first = state.update([_finding("RL202"), _finding("RL401", where="fc1")], 10, 0.0)
    assert [(e.kind, e.finding.code) for e in first] == [("new", "RL202"), ("new", "RL401")]
    assert state.update([_finding("RL202"), _finding("RL401", where="fc1")], 20, 0.0) == []
    changed = state.update([_finding("RL202", Severity.ERROR)], 30, 0.0, judged=["RL202", "RL401"])
    kinds = sorted((e.kind, e.finding.code) for e in changed)
    assert kinds == [("changed", "RL202"), ("withdrawn", "RL401")]
    assert changed[0].previous is Severity.WARNING or changed[1].previous is Severity.WARNING
    # a rule that did not run this time (skipped, crashed) withdraws nothing
    assert state.update([], 40, 0.0, judged=[]) == []


def test_a_finding_missing_from_one_check_is_not_withdrawn_and_reported_again() -> None:
    state = LiveState(confirm_after=1)  # withdrawn after WITHDRAW_AFTER checks without it
    assert WITHDRAW_AFTER >= 2
    assert [e.kind for e in state.update([_finding("RL202")], 10, 0.0)] == ["new"]
    assert state.update([], 20, 0.0) == []  # at the edge of its threshold for one flush
    assert state.update([_finding("RL202")], 30, 0.0) == []  # back: no flap
    for n in range(1, WITHDRAW_AFTER):
        assert state.update([], 30 + 10 * n, 0.0) == []
    (gone,) = state.update([], 100, 0.0)
    assert gone.kind == "withdrawn" and gone.first_step == 10
    state.update([_finding("RL401")], 110, 0.0)
    (final,) = state.update([], 120, 0.0, final=True)  # the run closed: no grace
    assert final.kind == "withdrawn" and final.finding.code == "RL401"


def test_a_withdrawn_warning_that_comes_back_waits_for_the_closed_run_an_error_does_not() -> None:
    state = LiveState(withdraw_after=1, confirm_after=1)
    assert [e.kind for e in state.update([_finding("RL202")], 10, 0.0)] == ["new"]
    assert [e.kind for e in state.update([], 20, 0.0)] == ["withdrawn"]
    assert state.update([_finding("RL202")], 30, 0.0) == []  # back at the edge: no flap
    assert state.findings == []
    (error,) = state.update([_finding("RL202", Severity.ERROR)], 40, 0.0)  # a stop must not wait
    assert error.kind == "new" and error.finding.severity is Severity.ERROR
    state.update([_finding("RL401")], 50, 0.0, judged=["RL401"])
    state.update([], 60, 0.0, judged=["RL401"])  # RL401 withdrawn
    (last,) = state.update(
        [_finding("RL202", Severity.ERROR), _finding("RL401")], 70, 0.0, final=True
    )
    assert last.kind == "new" and last.finding.code == "RL401"  # the closed run's verdict


def test_a_warning_seen_at_one_check_only_is_never_reported_an_error_at_once() -> None:
    state = LiveState()  # a warning needs CONFIRM_AFTER consecutive checks
    assert CONFIRM_AFTER == 2
    assert state.update([_finding("RL201")], 10, 0.0) == []  # one flush's curve: not yet
    assert state.update([], 20, 0.0) == []  # gone: never reported, so nothing to withdraw
    assert state.update([_finding("RL201")], 30, 0.0) == []
    (new,) = state.update([_finding("RL201")], 40, 0.0)  # confirmed
    assert new.kind == "new" and new.step == 40 and new.first_step == 30
    (error,) = state.update([_finding("RL201"), _finding("RL103", Severity.ERROR)], 50, 0.0)
    assert error.kind == "new" and error.finding.code == "RL103" and error.step == 50
    (last,) = LiveState().update([_finding("RL202")], 60, 0.0, final=True)  # run closed
    assert last.kind == "new"


def test_events_survive_a_round_trip_through_json() -> None:
    event = LiveEvent("changed", _finding("RL403", Severity.ERROR), 50, 20, 1.5, Severity.WARNING)
    back = LiveEvent.from_dict(json.loads(json.dumps(event.to_dict())))
    assert back.kind == "changed" and back.previous is Severity.WARNING
    assert back.finding.code == "RL403" and back.first_step == 20
    assert "RL403 error at step 50" in back.line() and "was warning" in back.line()


# -- the plain loop -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[runlint.Recorder, Path]:
    logdir = tmp_path_factory.mktemp("live") / "diverging"
    return _diverging_loop(logdir, lr=200.0, stop_on="error"), logdir


def test_a_diverging_plain_loop_stops_itself_on_an_error(
    stopped_run: tuple[runlint.Recorder, Path],
) -> None:
    rec, _ = stopped_run
    assert rec.should_stop
    assert rec.step < MAX_STEPS // 2  # the check ended it, not the data
    assert rec.live is not None and rec.live.stopped is not None
    assert "RL103" in rec.live.stopped["codes"]
    assert rec.live.checks >= 1 and rec.live.cpu > 0


def test_a_stopped_run_is_closed_and_loadable_with_the_reason_in_meta(
    stopped_run: tuple[runlint.Recorder, Path],
) -> None:
    rec, logdir = stopped_run
    run = runlint.load_run(logdir)
    assert run.complete
    assert len(run.steps) == rec.step
    stopped = run.meta["stopped"]
    assert stopped["step"] == rec.step and stopped["policy"] == "error"
    assert stopped["reason"].startswith(("RL103", "RL202"))


def test_the_live_findings_are_in_the_run_directory_and_the_report(
    stopped_run: tuple[runlint.Recorder, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runlint.cli import invoke

    _, logdir = stopped_run
    events = [json.loads(line) for line in (logdir / FINDINGS_FILE).read_text().splitlines()]
    assert events and all(e["event"] in {"new", "changed", "withdrawn"} for e in events)
    history = read_history(logdir)
    assert history.stopped is not None
    assert invoke(["check", str(logdir), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    nonfinite = [f for f in doc["findings"] if f["code"] == "RL103"]
    assert nonfinite and isinstance(nonfinite[0]["evidence"]["live_first_step"], int)
    assert invoke(["check", str(logdir)]) == 1
    out = capsys.readouterr().out
    assert "live check: stopped training at step" in out and "first seen: " in out


def test_the_html_report_says_why_training_stopped(
    stopped_run: tuple[runlint.Recorder, Path],
) -> None:
    from runlint.report.html.extract import run_payload

    _, logdir = stopped_run
    page = run_payload(runlint.load_run(logdir), [], 0)
    (note,) = [n for n in page.notes if n.startswith("training stopped by the live check")]
    assert "stop_on=error" in note and ("RL103" in note or "RL202" in note)


def test_warnings_are_logged_once_each_and_never_stop_an_error_policy(tmp_path: Path) -> None:
    seen: list[LiveEvent] = []
    # lr 5: the loss spikes and units die (warnings) but stays finite (no error)
    rec = _diverging_loop(
        tmp_path / "run", lr=5.0, steps=400, stop_on="error", on_finding=seen.append
    )
    assert not rec.should_stop and rec.step == 400
    assert "stopped" not in runlint.load_run(tmp_path / "run").meta
    news = [e.key for e in seen if e.kind == "new"]
    assert news and len(news) == len(set(news))  # once each
    assert all(e.finding.severity is not Severity.ERROR for e in seen)


def test_the_default_on_finding_is_one_log_line_per_finding(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="runlint.live"):
        rec = _diverging_loop(tmp_path / "run", lr=200.0, steps=800, check=True)
    assert not rec.should_stop  # no stop policy: training runs to the end
    assert rec.step == 800
    lines = [r.getMessage() for r in caplog.records if r.name == "runlint.live"]
    nonfinite = [line for line in lines if line.startswith("runlint: RL103 error at step")]
    assert len(nonfinite) == 1


def test_the_thread_mode_checks_in_the_training_process(tmp_path: Path) -> None:
    rec = _diverging_loop(
        tmp_path / "run", lr=200.0, check=LiveCheck(stop_on="error", mode="thread")
    )
    assert rec.should_stop and rec.step < MAX_STEPS // 2


def test_a_live_run_is_flushed_and_checked_early_not_first_at_flush_every(tmp_path: Path) -> None:
    x, y = training.data(256)
    model = training.mlp(nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    marks = []
    with runlint.record(
        model, opt, tmp_path / "run", meta={"num_classes": 4}, check=LiveCheck(mode="thread")
    ) as rec:  # flush_every 1000, no log_epoch: only the live schedule flushes before close
        for step in range(120):
            training.train_step(rec, model, opt, x, y, step)
            assert rec.live is not None
            if rec.live.checks > len(marks):
                marks.append(rec.step)
            time.sleep(PAUSE)
    # checks of the flushes after steps 25, 50 and 100 (a busy checker takes the latest one)
    assert marks and marks[0] <= 60, marks  # without them the first check is on close


def test_a_run_checker_skips_the_rules_that_judge_how_a_run_ended(
    stopped_run: tuple[runlint.Recorder, Path],
) -> None:
    from runlint.check import engine

    _, logdir = stopped_run
    checker = RunChecker(logdir, record=False)
    whole = {r.code for r in engine.discover().rules if r.whole_run}
    assert whole and not whole & {r.code for r in checker.rules}


# -- Lightning --------------------------------------------------------------------------------
def test_the_lightning_callback_stops_a_diverging_fit(tmp_path: Path) -> None:
    import lightning

    from runlint.integrations.lightning import RunlintCallback

    x, y = training.data(256)

    class Classifier(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = training.mlp(nn.ReLU)

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            time.sleep(PAUSE)
            xb, yb = batch
            return nn.functional.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=200.0)

    logdir = tmp_path / "run"
    callback = RunlintCallback(logdir, meta={"num_classes": 4}, flush_every=10, stop_on="error")
    trainer = lightning.Trainer(
        max_steps=MAX_STEPS, logger=False, callbacks=[callback], **training.QUIET_CPU_TRAINER
    )
    data = torch.utils.data.TensorDataset(x, y)
    trainer.fit(Classifier(), torch.utils.data.DataLoader(data, batch_size=32))
    assert trainer.should_stop and trainer.global_step < MAX_STEPS // 2
    run = runlint.load_run(logdir)
    assert run.complete and run.meta["stopped"]["step"] <= len(run.steps)
    assert "RL103" in run.meta["stopped"]["codes"]


# -- Hugging Face Trainer ---------------------------------------------------------------------
def test_the_hf_callback_stops_a_diverging_training(tmp_path: Path) -> None:
    import transformers

    from runlint.integrations.hf import RunlintCallback

    class Slow(transformers.TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            time.sleep(PAUSE)

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 50, (64, 8), generator=gen)
    labels = (ids[:, 0] > 27).long()
    rows = [{"input_ids": i, "labels": label} for i, label in zip(ids, labels, strict=True)]
    logdir = tmp_path / "run"
    steps = 1500
    trainer = transformers.Trainer(
        model=training.tiny_bert(3),
        args=transformers.TrainingArguments(
            str(tmp_path / "out"),
            per_device_train_batch_size=8,
            max_steps=steps,
            learning_rate=1e4,  # SGD at 10⁴: the loss overflows within a few steps
            optim="sgd",
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            logging_steps=1000,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=rows,
        callbacks=[RunlintCallback(logdir, flush_every=10, stop_on="error"), Slow()],
    )
    trainer.train()
    assert trainer.state.global_step < steps // 2
    run = runlint.load_run(logdir)
    assert run.complete and run.meta["stopped"]["policy"] == "error"
    assert run.meta["stopped"]["step"] == trainer.state.global_step
