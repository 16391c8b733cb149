"""Real writers, real trainings: TensorBoard, Lightning and the HF Trainer write logs of a tiny
CPU run; ``runlint check`` must find an injected fault (a learning rate ×500 that blows the loss
up to NaN) and stay silent (no warning, no error) on the healthy run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helpers_training as training
import pytest
import torch
from helpers_cli import invoke
from torch import nn

import runlint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEALTHY_LR, FAULTY_LR = 0.1, 50.0
LR_FAULT = {"RL103", "RL202"}  # non-finite loss, learning rate too high


def check(*paths: Path) -> dict[str, Any]:
    """``runlint check --format json`` on ``paths`` (the real CLI, run in-process)."""
    result = invoke("check", *map(str, paths), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert all(r["status"] != "error" for r in report["runs"]), report["runs"]
    return report


def loud(report: dict[str, Any], run: Path) -> list[str]:
    """Codes of the warnings and errors about ``run``."""
    return [
        f["code"]
        for f in report["findings"]
        if Path(f["run"]).resolve() == run.resolve() and f["severity"] in ("warning", "error")
    ]


# -- torch.utils.tensorboard -------------------------------------------------------------------
@pytest.fixture(scope="module")
def tensorboard_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from torch.utils.tensorboard import SummaryWriter

    x, y = training.data(512)
    out = {}
    for name, lr in (("healthy", HEALTHY_LR), ("faulty", FAULTY_LR)):
        logdir = tmp_path_factory.mktemp("tb") / name
        model = training.mlp(nn.ReLU)
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        writer = SummaryWriter(str(logdir))
        step = 0
        for epoch in range(3):
            for i in range(0, 512, 32):
                loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                writer.add_scalar("train/loss", loss.item(), step)
                writer.add_scalar("train/learning_rate", opt.param_groups[0]["lr"], step)
                step += 1
            with torch.no_grad():
                logits = model(x)
                writer.add_scalar("val/loss", nn.functional.cross_entropy(logits, y).item(), step)
                writer.add_scalar("val/acc", (logits.argmax(1) == y).float().mean().item(), step)
            if lr == HEALTHY_LR:  # TensorBoard refuses histograms of NaN
                writer.add_histogram("weights", model[0].weight, epoch)
            writer.add_text("note", f"epoch {epoch}", epoch)
        writer.close()
        out[name] = logdir
    return out


def test_tensorboard_logs_load_every_step(tensorboard_runs: dict[str, Path]) -> None:
    run = runlint.load_run(tensorboard_runs["healthy"])
    assert run.source == "tensorboard"
    assert len(run.steps) == 48 and run.steps["loss"].iloc[0] == pytest.approx(1.43, abs=0.1)
    assert len(run.epochs) == 3 and run.epochs["val_acc"].iloc[-1] > 0.6
    assert list(run.steps["lr"]) == pytest.approx([HEALTHY_LR] * 48)


def test_check_finds_the_high_learning_rate_in_tensorboard_logs(
    tensorboard_runs: dict[str, Path],
) -> None:
    report = check(tensorboard_runs["healthy"], tensorboard_runs["faulty"])
    assert loud(report, tensorboard_runs["healthy"]) == []
    assert LR_FAULT & set(loud(report, tensorboard_runs["faulty"]))


def test_a_killed_tensorboard_run_reads_up_to_its_last_record(
    tensorboard_runs: dict[str, Path], tmp_path: Path
) -> None:
    (source,) = tensorboard_runs["healthy"].glob("events.out.tfevents.*")
    data = source.read_bytes()
    (tmp_path / source.name).write_bytes(data[: len(data) // 2 + 5])
    run = runlint.load_run(tmp_path)
    assert not run.complete and run.meta["import"]["truncated"]
    assert 10 < len(run.steps) < 48
    full = runlint.load_run(tensorboard_runs["healthy"])
    assert run.steps["loss"].tolist() == full.steps["loss"].iloc[: len(run.steps)].tolist()


# -- Lightning: CSVLogger and TensorBoardLogger ------------------------------------------------
@pytest.fixture(scope="module")
def lightning_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import lightning
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    x, y = training.data(512)

    class Classifier(lightning.LightningModule):
        def __init__(self, lr: float, num_classes: int = 4, batch_size: int = 32) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = training.mlp(nn.ReLU)

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            xb, yb = batch
            logits = self.net(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            self.log("train_acc", (logits.argmax(1) == yb).float().mean(), on_epoch=True)
            return loss

        validation_step = training.validation_step

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams["lr"], momentum=0.9)
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)]

    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    val = torch.utils.data.DataLoader(data, batch_size=256)
    root = tmp_path_factory.mktemp("lightning")
    out = {}
    for name, lr in (("healthy", HEALTHY_LR), ("faulty", FAULTY_LR)):
        torch.manual_seed(0)
        trainer = lightning.Trainer(
            max_epochs=3,
            logger=[
                CSVLogger(root, name=f"{name}-csv"),
                TensorBoardLogger(root, name=f"{name}-tb"),
            ],
            log_every_n_steps=1,
            callbacks=[LearningRateMonitor("step")],
            **training.QUIET_CPU_TRAINER,
        )
        trainer.fit(Classifier(lr), train, val)
        out[f"{name}-csv"] = root / f"{name}-csv" / "version_0"
        out[f"{name}-tb"] = root / f"{name}-tb" / "version_0"
    return out


def test_lightning_csv_and_tensorboard_logs_give_the_same_run(
    lightning_runs: dict[str, Path],
) -> None:
    csv = runlint.load_run(lightning_runs["healthy-csv"])
    tb = runlint.load_run(lightning_runs["healthy-tb"])
    assert (csv.source, tb.source) == ("lightning", "tensorboard")
    for run in (csv, tb):
        assert len(run.steps) == 48 and len(run.epochs) == 3
        assert run.meta["num_classes"] == 4 and run.meta["batch_size"] == 32
        assert {"val_loss", "val_acc", "train_loss", "train_acc"} <= set(run.epochs.columns)
        assert sorted(set(run.steps["lr"].round(6))) == [0.025, 0.05, 0.1]  # StepLR halves
    assert csv.steps["loss"].to_numpy() == pytest.approx(tb.steps["loss"].to_numpy())


def test_check_finds_the_high_learning_rate_in_lightning_logs(
    lightning_runs: dict[str, Path],
) -> None:
    report = check(lightning_runs["healthy-csv"].parent.parent)
    assert len(report["runs"]) == 4
    for kind in ("csv", "tb"):
        assert loud(report, lightning_runs[f"healthy-{kind}"]) == []
        assert LR_FAULT & set(loud(report, lightning_runs[f"faulty-{kind}"]))


def test_a_half_written_lightning_csv_is_read_to_its_last_line(
    lightning_runs: dict[str, Path], tmp_path: Path
) -> None:
    text = (lightning_runs["healthy-csv"] / "metrics.csv").read_text()
    (tmp_path / "metrics.csv").write_text(text[: len(text) // 2])
    run = runlint.load_run(tmp_path)
    assert not run.complete and 0 < len(run.steps) < 48


# -- Hugging Face Trainer ----------------------------------------------------------------------
class _MLPForClassification(nn.Module):
    """What a user hands the Trainer when the model is not a transformers one."""

    def __init__(self) -> None:
        super().__init__()
        self.net = training.mlp(nn.ReLU)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, Any]:
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


@pytest.fixture(scope="module")
def hf_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import transformers

    root = tmp_path_factory.mktemp("hf")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 50, (256, 8), generator=gen)
    labels = (ids[:, 0] > 27).long()
    x, y = training.data(512)

    def accuracy(pred: Any) -> dict[str, float]:
        return {"accuracy": float((pred.predictions.argmax(-1) == pred.label_ids).mean())}

    common = dict(
        per_device_train_batch_size=16,
        num_train_epochs=2,
        eval_strategy="epoch",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    healthy = transformers.Trainer(
        model=training.tiny_bert(2),
        args=transformers.TrainingArguments(
            str(root / "healthy"),
            learning_rate=1e-3,
            logging_steps=4,
            save_strategy="epoch",
            report_to=["tensorboard"],
            **common,
        ),
        train_dataset=[
            {"input_ids": i, "labels": label} for i, label in zip(ids, labels, strict=True)
        ],
        eval_dataset=[
            {"input_ids": i, "labels": label} for i, label in zip(ids, labels, strict=True)
        ],
        compute_metrics=accuracy,
    )
    healthy.train()
    faulty = transformers.Trainer(
        model=_MLPForClassification(),
        args=transformers.TrainingArguments(
            str(root / "faulty"),
            learning_rate=FAULTY_LR * 10,
            optim="sgd",
            logging_steps=1,
            logging_nan_inf_filter=False,
            save_strategy="no",
            report_to=[],
            **common,
        ),
        train_dataset=[{"x": a, "labels": b} for a, b in zip(x, y, strict=True)],
        eval_dataset=[{"x": a, "labels": b} for a, b in zip(x, y, strict=True)],
    )
    faulty.train()
    faulty.save_state()
    return {"healthy": root / "healthy", "faulty": root / "faulty"}


def test_hf_output_folder_loads_with_its_metadata(hf_runs: dict[str, Path]) -> None:
    run = runlint.load_run(hf_runs["healthy"])
    assert run.source == "hf" and run.complete
    assert run.meta["num_classes"] == 2 and run.meta["loss"] == "cross_entropy"
    assert run.meta["provenance"]["num_classes"].startswith("checkpoint-32/config.json")
    assert run.meta["batch_size"] == 16 and run.meta["loss_logging_interval"] == 4
    assert run.meta["first_loss_is_average"] is True
    assert list(run.steps.index) == [3, 7, 11, 15, 19, 23, 27, 31]
    assert {"loss", "grad_norm", "lr"} <= set(run.steps.columns)
    assert len(run.epochs) == 2 and {"val_loss", "val_acc"} <= set(run.epochs.columns)


def test_hf_tensorboard_events_read_like_its_trainer_state(hf_runs: dict[str, Path]) -> None:
    (events,) = (hf_runs["healthy"] / "runs").iterdir()
    tb = runlint.load_run(events)
    hf = runlint.load_run(hf_runs["healthy"])
    assert tb.source == "tensorboard"
    assert tb.steps["loss"].dropna().to_numpy() == pytest.approx(
        hf.steps["loss"].to_numpy(), rel=1e-6
    )
    assert tb.epochs["val_acc"].to_numpy() == pytest.approx(hf.epochs["val_acc"].to_numpy())


def test_check_finds_the_high_learning_rate_in_hf_logs(hf_runs: dict[str, Path]) -> None:
    report = check(hf_runs["healthy"], hf_runs["faulty"])
    assert loud(report, hf_runs["healthy"]) == []
    assert LR_FAULT & set(loud(report, hf_runs["faulty"]))
    cannot_verify = [
        f
        for f in report["findings"]
        if f["code"] == "RL101" and Path(f["run"]).resolve() == hf_runs["healthy"].resolve()
    ]
    assert [f["severity"] for f in cannot_verify] == ["info"]


def test_add_scalars_folders_and_a_bare_event_file_name_are_one_run(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    logdir = tmp_path / "tb"
    writer = SummaryWriter(str(logdir))
    for step in range(30):
        writer.add_scalars("loss", {"train": 2.0 / (1 + step), "val": 2.5 / (1 + 0.5 * step)}, step)
    writer.close()
    (own,) = [p for p in logdir.iterdir() if p.is_file()]
    own.rename(logdir / "events.out.tfevents")  # some writers use the bare name
    assert sorted(p.name for p in logdir.iterdir() if p.is_dir()) == ["loss_train", "loss_val"]
    assert [p for p in runlint.find_runs(logdir)] == [logdir]
    run = runlint.load_run(logdir)
    assert len(run.steps["loss"].dropna()) == 30
    assert run.meta["imported_names"] == {"loss_train": "steps.loss", "loss_val": "epochs.val_loss"}
