"""The Lightning and Hugging Face callbacks record what ``runlint.record`` records.

Gradient statistics must be those of the step being taken: with plain SGD (no momentum, no
clipping) the update is ``lr × grad``, so ``update_norm == lr × grad_norm`` for every parameter;
a hook that ran before Lightning's closure would see the previous step's gradients instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helpers_training as training
import numpy as np
import pytest
import torch
from torch import nn

import runlint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TABLES = ("steps", "groups", "params", "activations", "histograms", "weights", "epochs")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> runlint.Run:
    """The reference: the same model trained in a plain loop under ``runlint.record``."""
    x, y = training.data(256)
    model = training.mlp(nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    logdir = tmp_path_factory.mktemp("record") / "run"
    with runlint.record(model, opt, logdir, stats_every=1, hist_every=4) as rec:
        for _ in range(2):
            for i in range(0, 256, 32):
                loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
            rec.log_epoch(val_loss=loss.item())
    return runlint.load_run(logdir)


def _present(run: runlint.Run) -> set[str]:
    return {t for t in TABLES if run.has(t)}


def _update_is_lr_times_grad(run: runlint.Run) -> None:
    params = run.params.merge(run.groups[run.groups["group"] == 0][["step", "lr"]], on="step")
    assert len(params) > 0
    expected = params["lr"] * params["grad_norm"]
    np.testing.assert_allclose(params["update_norm"], expected, rtol=1e-3, atol=1e-7)


def test_the_reference_recording_satisfies_the_step_point_check(recorded: runlint.Run) -> None:
    _update_is_lr_times_grad(recorded)


# -- Lightning ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lightning_run(tmp_path_factory: pytest.TempPathFactory) -> runlint.Run:
    import lightning

    from runlint.integrations.lightning import RunlintCallback

    x, y = training.data(256)

    class Classifier(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = training.mlp(nn.Tanh)

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            xb, yb = batch
            return nn.functional.cross_entropy(self.net(xb), yb)  # not self(...)

        validation_step = training.validation_step

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(x, y)
    logdir = tmp_path_factory.mktemp("lightning") / "run"
    trainer = lightning.Trainer(
        max_epochs=2,
        logger=False,
        callbacks=[RunlintCallback(logdir, meta={"num_classes": 4}, stats_every=1, hist_every=4)],
        accumulate_grad_batches=2,
        **training.QUIET_CPU_TRAINER,
    )
    trainer.fit(
        Classifier(),
        torch.utils.data.DataLoader(data, batch_size=16),
        torch.utils.data.DataLoader(data, batch_size=128),
    )
    return runlint.load_run(logdir)


def test_lightning_callback_records_the_same_tables(
    lightning_run: runlint.Run, recorded: runlint.Run
) -> None:
    assert _present(lightning_run) == _present(recorded) == set(TABLES)
    assert lightning_run.complete and lightning_run.meta["num_classes"] == 4
    assert lightning_run.meta["batch_size"] == 16
    assert lightning_run.meta["optimizer"]["class"] == "SGD"


def test_lightning_callback_counts_optimizer_steps_and_epochs(lightning_run: runlint.Run) -> None:
    assert list(lightning_run.steps.index) == list(range(16))  # 32 batches, 2 per step
    assert lightning_run.steps["loss"].notna().all()
    assert list(lightning_run.epochs["step"]) == [8, 16]
    assert {"val_loss", "val_acc"} <= set(lightning_run.epochs.columns)


def test_lightning_callback_takes_gradients_of_the_step_being_taken(
    lightning_run: runlint.Run,
) -> None:
    _update_is_lr_times_grad(lightning_run)


# -- Hugging Face Trainer ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def hf_run(tmp_path_factory: pytest.TempPathFactory) -> runlint.Run:
    import transformers

    from runlint.integrations.hf import RunlintCallback

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 50, (64, 8), generator=gen)
    labels = (ids[:, 0] > 27).long()
    rows = [{"input_ids": i, "labels": label} for i, label in zip(ids, labels, strict=True)]
    logdir = tmp_path_factory.mktemp("hf") / "run"
    trainer = transformers.Trainer(
        model=training.tiny_bert(3),
        args=transformers.TrainingArguments(
            str(tmp_path_factory.mktemp("hf-out")),
            per_device_train_batch_size=8,
            gradient_accumulation_steps=2,
            num_train_epochs=2,
            learning_rate=0.05,
            optim="sgd",
            lr_scheduler_type="constant",
            max_grad_norm=0.0,
            logging_steps=2,
            eval_strategy="epoch",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
        ),
        train_dataset=rows,
        eval_dataset=rows,
        callbacks=[RunlintCallback(logdir, stats_every=1, hist_every=4)],
    )
    trainer.train()
    return runlint.load_run(logdir)


def test_hf_callback_records_the_same_tables(hf_run: runlint.Run, recorded: runlint.Run) -> None:
    assert _present(hf_run) == _present(recorded) == set(TABLES)
    assert hf_run.complete
    assert hf_run.meta["num_classes"] == 3 and hf_run.meta["loss"] == "cross_entropy"
    assert hf_run.meta["batch_size"] == 8


def test_hf_callback_logs_the_loss_of_every_step(hf_run: runlint.Run) -> None:
    assert list(hf_run.steps.index) == list(range(8))  # 64 rows / (8 × 2 accumulated)
    assert hf_run.steps["loss"].notna().all()
    assert hf_run.steps["loss"].iloc[0] == pytest.approx(np.log(3), abs=0.3)
    assert hf_run.steps["grad_norm"].notna().sum() == 4  # the Trainer logs every 2 steps
    assert list(hf_run.epochs["step"]) == [4, 8] and "val_loss" in hf_run.epochs.columns


def test_hf_callback_takes_gradients_of_the_step_being_taken(hf_run: runlint.Run) -> None:
    _update_is_lr_times_grad(hf_run)


def test_checking_a_callback_run_gives_a_report(
    hf_run: runlint.Run, lightning_run: runlint.Run
) -> None:
    from runlint.check import engine
    from runlint.check.config import Config

    checker = engine.Checker(engine.configure(engine.discover(), Config(), None, []))
    results = list(checker.check([Path(hf_run.path), Path(lightning_run.path)], 1))
    assert [r.status for r in results] == ["ok", "ok"]
    assert all(not r.rule_errors for r in results)
