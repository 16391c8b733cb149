"""Loss-curve, initialization and optimizer-settings rules (RL1xx, RL2xx, RL6xx) on real runs.

The generic corpus test checks that every expected code fires and healthy runs stay silent;
these tests check the behaviours around that: warm-up, label smoothing, regression, inferred
metadata, messages with their numbers, options that move thresholds, severities.
"""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from runlint.rules.rl101_initial_loss_off import InitialLossOff
from runlint.rules.rl102_regularization_off import RegularizationOff
from runlint.rules.rl103_non_finite_loss import NonFiniteLoss
from runlint.rules.rl104_init_scale_off import InitScaleOff
from runlint.rules.rl201_lr_too_low import LrTooLow
from runlint.rules.rl202_lr_too_high import LrTooHigh
from runlint.rules.rl203_noisy_loss import NoisyLoss
from runlint.rules.rl204_loss_not_decreasing import LossNotDecreasing
from runlint.rules.rl205_lr_not_decayed import LrNotDecayed
from runlint.rules.rl601_adam_settings_off import AdamSettingsOff
from runlint.rules.rl602_momentum_off import MomentumOff
from runlint.rules.rl603_noisy_final_validation import NoisyFinalValidation

import runlint
from runlint.check.rule import Finding, NotJudged, Rule, Severity
from runlint.run import Run
from runlint.run.replay import Flushes

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def corpus(name: str) -> Run:
    path = CORPUS / name
    assert path.is_dir(), f"corpus run {name} missing (regenerate fixtures/corpus)"
    return runlint.load_run(path)


def findings(rule: Rule, run: Run) -> list[Finding]:
    assert not rule.missing(run), rule.missing(run)
    return list(rule.check(run))


def with_meta(run: Run, **changes: object) -> Run:
    """The same recorded run with some metadata changed (as an importer or config would)."""
    other = copy.copy(run)
    other.meta = {**copy.deepcopy(run.meta), **changes}
    return other


# -- recorded here: small real runs for what the corpus does not vary --------------------------


def _record(root: Path, name: str, *, lr: float, warmup: int, weight_decay: float) -> Path:
    import torch
    from torch import nn

    torch.manual_seed(0)
    x = torch.randn(512, 16)
    y = (x[:, :4].argmax(1)).long()
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: min(1.0, (t + 1) / max(1, warmup)))
    path = root / name
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread avoids oversubscribing shared cores
    try:
        _train(model, opt, sched, x, y, path)
    finally:
        torch.set_num_threads(threads)
    return path


def _train(model: Any, opt: Any, sched: Any, x: Any, y: Any, path: Path) -> None:
    from torch import nn

    with runlint.record(model, opt, path, meta={"num_classes": 4, "batch_size": 32}) as rec:
        for _epoch in range(4):
            for i in range(0, 512, 32):
                loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                rec.log(loss=loss)
            rec.log_epoch()


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("curves")
    return {
        "big_wd": runlint.load_run(_record(root, "big-wd", lr=0.05, warmup=0, weight_decay=2.0)),
        "small_wd": runlint.load_run(
            _record(root, "small-wd", lr=0.05, warmup=20, weight_decay=5e-4)
        ),
    }


# -- RL101 initial-loss-off --------------------------------------------------------------------


def test_rl101_message_states_initial_loss_and_ln_c() -> None:
    (finding,) = findings(InitialLossOff(), corpus("rl101-cnn-last-layer-x30"))
    assert "at step 0" in finding.message and "ln(10) = 2.30" in finding.message
    assert finding.evidence["initial_loss"] > 2.6
    assert "×0.01" in finding.fix and finding.steps == (0, 0)


def test_rl101_label_smoothing_does_not_hide_a_bad_init_nor_flag_a_good_one() -> None:
    healthy = corpus("tokens-transformer-adamw-smoothing")
    assert healthy.meta.get("label_smoothing")
    assert findings(InitialLossOff(), healthy) == []
    bad = with_meta(corpus("rl101-last-layer-x50"), label_smoothing=0.1)
    assert findings(InitialLossOff(), bad)


def test_rl101_he_initialized_head_is_advice_not_a_warning() -> None:
    run = corpus("blobs-mlp-deep8-he-init")  # He on every layer: step-0 loss 2.85 > 1.2 ln 10
    assert findings(InitialLossOff(), run) == []
    (finding,) = findings(InitialLossOff(InitialLossOff.Options(high_ratio=1.2)), run)
    assert finding.severity == Severity.INFO and "He-scaled output layer" in finding.message
    assert finding.evidence["initial_loss"] < finding.evidence["he_head_bound"]
    tight = InitialLossOff(InitialLossOff.Options(high_ratio=1.2, he_signal=0.25))
    assert findings(tight, run)[0].severity == Severity.WARNING


def test_rl101_regression_is_skipped_with_a_reason() -> None:
    run = corpus("regression-mlp-adam")
    reason = InitialLossOff().applies(run)
    assert reason is not None and "mse" in reason


def test_rl101_multi_margin_expects_c_minus_1_over_c_and_svm_c_minus_1() -> None:
    run = corpus("blobs-svm-sgd")
    assert findings(InitialLossOff(), run) == []  # ≈ 0.9 = (10 − 1)/10 for PyTorch's loss
    as_svm = findings(InitialLossOff(), with_meta(run, loss="svm"))  # expects C − 1 = 9
    assert [f.severity for f in as_svm] == [Severity.INFO]
    assert "below" in as_svm[0].message


def test_rl101_inferred_num_classes_is_only_advice() -> None:
    bad = corpus("rl101-last-layer-x50")
    provenance = {**bad.meta["provenance"], "num_classes": "inferred: out_features"}
    (finding,) = findings(InitialLossOff(), with_meta(bad, provenance=provenance))
    assert finding.severity == Severity.INFO and "inferred" in finding.message


def test_rl101_averaged_first_loss_cannot_be_verified() -> None:
    run = with_meta(corpus("rl101-last-layer-x50"), first_loss_is_average=True)
    (finding,) = findings(InitialLossOff(), run)
    assert finding.severity == Severity.INFO and "cannot be verified" in finding.message


def test_rl101_a_wrong_start_is_a_warning_also_when_num_classes_comes_from_the_user() -> None:
    run = corpus("rl101-last-layer-x50")
    (finding,) = findings(InitialLossOff(), run)
    assert finding.severity == Severity.WARNING  # the run may recover: never an error
    provenance = {**run.meta["provenance"], "num_classes": "configured"}  # --num-classes
    (configured,) = findings(InitialLossOff(), with_meta(run, provenance=provenance))
    assert configured.severity == Severity.WARNING and "inferred" not in configured.message


# -- RL102 regularization-off --------------------------------------------------------------


def test_rl102_logged_l2_term_swamping_the_data_loss() -> None:
    (finding,) = findings(RegularizationOff(), corpus("rl102-l2-swamps-data-loss"))
    assert "reg_loss" in finding.message and "× the data_loss" in finding.message
    assert finding.evidence["reg_loss"] > finding.evidence["data_loss"]


def test_rl102_estimates_the_l2_term_of_weight_decay(recorded: dict[str, Run]) -> None:
    (finding,) = findings(RegularizationOff(), recorded["big_wd"])
    assert "weight_decay 2" in finding.message and "lower weight_decay" in finding.fix
    assert findings(RegularizationOff(), recorded["small_wd"]) == []


def test_rl102_decoupled_weight_decay_is_judged_by_its_shrink_per_step() -> None:
    run = corpus("images3-cnn-adamw-groups")  # AdamW, weight_decay 0.05 at lr 1e-3
    assert findings(RegularizationOff(), run) == []
    strict = RegularizationOff(RegularizationOff.Options(max_decay_per_step=1e-6))
    (finding,) = findings(strict, run)
    assert "per step" in finding.message and "half-life" in finding.message


# -- RL103 non-finite-loss -------------------------------------------------------------------


def test_rl103_reports_first_bad_step_and_last_finite_value() -> None:
    (finding,) = findings(NonFiniteLoss(), corpus("rl103-lr-x1000-nan"))
    assert finding.severity == Severity.ERROR
    assert "last finite value" in finding.message and finding.steps is not None


# -- RL104 init-scale-off --------------------------------------------------------------------


def test_rl104_names_the_layer_and_the_he_scale() -> None:
    run = corpus("rl104-init-std-1")
    (finding,) = findings(InitScaleOff(), run)
    assert "He √(2/fan_in)" in finding.message and finding.where


def test_rl104_small_head_is_fine_but_a_zero_hidden_layer_is_an_error() -> None:
    run = corpus("blobs-mlp-adam-cosine")
    params = copy.deepcopy(run.meta["params"])
    dense = [p for p in params if p["module_type"] == "Linear" and p["role"] == "weight"]
    dense[-1]["init_std"] = 0.0  # zero-initialized output layer: good practice
    assert findings(InitScaleOff(), with_meta(run, params=params)) == []
    dense[0]["init_std"] = 0.0
    (finding,) = findings(InitScaleOff(), with_meta(run, params=params))
    assert finding.severity == Severity.ERROR and "all zeros" in finding.message


def test_rl104_embeddings_and_norm_layers_are_not_dense_layers() -> None:
    run = corpus("tokens-transformer-adamw-smoothing")
    kinds = {p["module_type"] for p in run.meta["params"]}
    assert {"Embedding", "LayerNorm"} & kinds
    assert findings(InitScaleOff(), run) == []


# -- RL201 lr-too-low -------------------------------------------------------------------------


def test_rl201_linear_fall_message_and_remaining_option() -> None:
    run = corpus("rl201-rmsprop-lr-div100")
    (finding,) = findings(LrTooLow(), run)
    assert "linearly" in finding.message and "lr 2e-05" in finding.message
    assert finding.fix == "raise the learning rate ×10"
    assert findings(LrTooLow(LrTooLow.Options(min_remaining=0.95)), run) == []


def test_rl201_tiny_lr_that_barely_moves_the_loss() -> None:
    (finding,) = findings(LrTooLow(), corpus("rl401-sgd-lr-1e-5"))
    assert "far below the usual range for SGD" in finding.message


# -- RL202 lr-too-high ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["images-cnn-sgd-warmup-cosine", "tokens-transformer-adamw-smoothing"]
)
def test_warm_up_is_neither_too_high_nor_too_low_nor_stuck(name: str) -> None:
    run = corpus(name)
    assert run.steps["lr"].iloc[0] < run.steps["lr"].max() / 10  # it really warms up
    for rule in (LrTooHigh(), LrTooLow(), LossNotDecreasing(), NoisyLoss()):
        assert findings(rule, run) == [], rule.code


def test_rl202_explosion_to_nan_is_an_error_with_numbers() -> None:
    (finding,) = findings(LrTooHigh(), corpus("rl103-lr-x1000-nan"))
    assert finding.severity == Severity.ERROR and "nan" in finding.message
    assert "lr 50" in finding.message


def test_rl202_spike_threshold_is_an_option() -> None:
    run = corpus("rl202-cnn-lr-x20")
    (finding,) = findings(LrTooHigh(), run)
    assert "spiked" in finding.message
    relaxed = LrTooHigh(LrTooHigh.Options(spike_ratio=1e12))
    (finding,) = findings(relaxed, run)  # without the spike: the huge first steps killed it
    assert "killed the units" in finding.message and finding.where == "update_ratio"
    assert finding.evidence["first_update_ratio"] > 1e-2


def test_rl202_bouncing_loss_at_a_normal_batch_size() -> None:
    (finding,) = findings(LrTooHigh(), corpus("rl202-adam-lr-x30"))
    assert "bounces" in finding.message and "batch size 64" in finding.message


def test_rl202_a_climb_while_the_schedule_drives_the_lr_to_zero_is_not_the_step(
    tmp_path: Path,
) -> None:
    run = corpus("rl203-batch-size-2")  # at a constant lr the loss climbs back from step 167
    (climb,) = [f for f in findings(LrTooHigh(), run) if "climbed back" in f.message]
    low, top = climb.steps
    decayed = tmp_path / "decayed"
    shutil.copytree(run.path, decayed)
    groups = pd.read_parquet(decayed / "groups-r0.parquet")
    after = (groups["step"] - low).clip(lower=0) / (top - low)
    groups["lr"] = groups["lr"] * 1e-3**after  # ×1/1000 from the low to the top
    groups.to_parquet(decayed / "groups-r0.parquet")
    rerun = runlint.load_run(decayed)
    assert not [f for f in findings(LrTooHigh(), rerun) if "climbed back" in f.message]


def test_rl202_a_bounce_is_advice_when_two_validation_epochs_show_it_settling(
    tmp_path: Path,
) -> None:
    run = corpus("rl202-adam-lr-x30")
    (bounce,) = findings(LrTooHigh(), run)
    assert "bounces" in bounce.message and bounce.severity == Severity.WARNING
    settling = tmp_path / "settling"
    shutil.copytree(run.path, settling)
    epochs = pd.read_parquet(settling / "epochs-r0.parquet").iloc[:2].copy()
    epochs["val_loss"] = [1.0, 0.9]  # two epochs, the second better
    epochs.to_parquet(settling / "epochs-r0.parquet")
    (advice,) = findings(LrTooHigh(), runlint.load_run(settling))
    assert "bounces" in advice.message and advice.severity == Severity.INFO


def test_rl202_a_climb_is_advice_when_the_validation_loss_still_improved(tmp_path: Path) -> None:
    run = corpus("rl203-batch-size-2")  # the loss climbs back from step 167; val 1.41 → 3.34

    def with_val(name: str, val: list[float]) -> Finding:
        copied = tmp_path / name
        shutil.copytree(run.path, copied)
        epochs = pd.read_parquet(copied / "epochs-r0.parquet")
        epochs["val_loss"] = val
        epochs.to_parquet(copied / "epochs-r0.parquet")
        (climb,) = [
            f for f in findings(LrTooHigh(), runlint.load_run(copied)) if "climbed" in f.message
        ]
        return climb

    assert with_val("improved", [1.41, 1.30]).severity == Severity.INFO  # ended at its best
    assert with_val("flat", [1.41, 1.41]).severity == Severity.WARNING  # flat says nothing


def test_rl202_adam_first_steps_that_rewrite_the_weights_and_a_stuck_loss() -> None:
    run = corpus("rl401-adamw-lr-0.1")
    (finding,) = findings(LrTooHigh(), run)
    assert "moved the dense weights by 0.895 of their norm" in finding.message
    assert "got stuck" in finding.message and finding.severity == Severity.WARNING
    assert findings(LrTooHigh(LrTooHigh.Options(first_rewrite=1.0)), run) == []


def test_rl206_a_schedule_that_cut_the_lr_after_the_loss_plateaued_is_not_a_collapse(
    tmp_path: Path,
) -> None:
    from runlint.rules.rl206_lr_collapsed import LrCollapsed

    run = corpus("rl206-exponential-lr-stepped-per-batch")

    def cut_at_epoch_5(name: str, val: list[float]) -> list[Finding]:
        copied = tmp_path / name  # the lr kept for 6 epochs, then ×0.01 (20% of the run)
        shutil.copytree(run.path, copied)
        groups = pd.read_parquet(copied / "groups-r0.parquet")
        peak = float(groups["lr"].max())
        groups["lr"] = peak * (groups["step"] < 138) + 0.01 * peak * (groups["step"] >= 138)
        groups.to_parquet(copied / "groups-r0.parquet")
        epochs = pd.read_parquet(copied / "epochs-r0.parquet")
        epochs["val_loss"] = val
        epochs.to_parquet(copied / "epochs-r0.parquet")
        return findings(LrCollapsed(), runlint.load_run(copied))

    n = len(run.epochs)
    plateau = [0.6, 0.45] + [0.4] * (n - 2)  # no gain in the epochs before the cut
    assert cut_at_epoch_5("plateau", plateau) == []
    (collapsed,) = cut_at_epoch_5("falling", list(np.linspace(0.6, 0.3, n)))
    assert "stayed below" in collapsed.message


def test_rl106_a_loss_still_falling_fast_is_not_at_a_floor(tmp_path: Path) -> None:
    from runlint.rules.rl106_loss_floor_high import LossFloorHigh

    run = corpus("rl105-softmax-before-cross-entropy")
    (floor,) = findings(LossFloorHigh(), run)
    assert "the loss does not measure the predictions" in floor.message
    falling = tmp_path / "falling"
    shutil.copytree(run.path, falling)
    epochs = pd.read_parquet(falling / "epochs-r0.parquet")
    n = len(epochs)
    epochs["train_loss"] = epochs["train_loss"] * (1 + 0.5 * (n - 1 - epochs.index) / n)
    epochs.to_parquet(falling / "epochs-r0.parquet")
    assert findings(LossFloorHigh(), runlint.load_run(falling)) == []


def test_rl201_a_loss_flat_then_falling_fast_is_not_a_linear_fall() -> None:
    flushes = Flushes(CORPUS / "rl108-mse-broadcast")  # ~flat for 1100 steps, then it falls
    (linear,) = findings(LrTooLow(), flushes.at(372))  # early on it falls slowly, linearly
    assert "slowly and linearly" in linear.message and linear.severity == Severity.INFO
    assert findings(LrTooLow(), flushes.at(1178)) == []  # the second half fell 6.5x the first


# -- RL203 noisy-loss -------------------------------------------------------------------------


def test_rl203_small_batch_fix_raises_the_batch_size() -> None:
    run = corpus("rl203-batch-size-2")
    (finding,) = findings(NoisyLoss(), run)
    assert "batch size 2" in finding.message and "raise the batch size" in finding.fix
    assert findings(NoisyLoss(NoisyLoss.Options(max_noise=5.0)), run) == []


# -- RL204 loss-not-decreasing ------------------------------------------------------------------


def test_rl204_says_the_loss_sits_at_chance() -> None:
    (finding,) = findings(LossNotDecreasing(), corpus("rl204-labels-shuffled-per-batch"))
    assert f"ln(10) = {math.log(10):.2f}" in finding.message


def test_rl204_a_loss_that_falls_only_to_chance_is_caught_with_its_validation_accuracy(
    tmp_path: Path,
) -> None:
    """Real runs: 90 % of each batch's labels replaced by random ones. The loss falls from its
    start to ln(4) and stops there while validation (clean labels) learns; clean labels train."""

    def run(name: str, shuffled: float) -> list[Finding]:
        torch.manual_seed(0)
        x = torch.randn(4096, 16)
        y = x[:, :4].argmax(1)
        model = torch.nn.Sequential(
            torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4)
        )
        with torch.no_grad():
            model[2].bias.copy_(torch.tensor([1.5, 0.0, 0.0, -1.5]))  # starts above chance
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        meta = {"num_classes": 4, "loss": "cross_entropy"}
        with runlint.record(model, opt, tmp_path / name, meta=meta) as rec:
            for _ in range(4):
                for i in range(0, 3072, 64):
                    xb, yb = x[i : i + 64], y[i : i + 64].clone()
                    noisy = torch.rand(64) < shuffled
                    yb[noisy] = torch.randint(0, 4, (int(noisy.sum()),))
                    loss = torch.nn.functional.cross_entropy(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    rec.log(loss=loss)
                with torch.no_grad():
                    val = float((model(x[3072:]).argmax(1) == y[3072:]).float().mean())
                rec.log_epoch(val_acc=val)
        return findings(LossNotDecreasing(), runlint.load_run(tmp_path / name))

    (finding,) = run("shuffled", 0.9)
    assert "never gets below chance level" in finding.message and "ln(4)" in finding.message
    assert "validation accuracy" in finding.message and finding.severity == Severity.WARNING
    assert run("clean", 0.0) == []


def _fit_with_targets(
    path: Path,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Any,
    *,
    lr: float,
    epochs: int,
    shuffled: bool,
    meta: dict[str, Any] | None = None,
) -> list[Finding]:
    """RL204 on a real Adam run over (x, y) in batches of 64; ``shuffled``: each batch's targets
    are permuted, drawn apart from their inputs."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with runlint.record(model, opt, path, meta=meta) as rec:
        for _ in range(epochs):
            for i in range(0, len(x), 64):
                xb, yb = x[i : i + 64], y[i : i + 64]
                if shuffled:
                    yb = yb[torch.randperm(64)]
                loss = loss_fn(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
    return findings(LossNotDecreasing(), runlint.load_run(path))


def test_rl204_a_regression_that_falls_only_to_the_targets_mean_is_caught(
    tmp_path: Path,
) -> None:
    """Real runs: a regression whose targets are drawn apart from their inputs. The loss falls
    from its start (the targets' offset) to their variance and stops: the model predicts the
    mean. With targets that follow the inputs the same model learns and nothing is said."""

    def run(name: str, shuffled: bool) -> list[Finding]:
        torch.manual_seed(0)
        x = torch.randn(2048, 8)
        y = 3.0 + x[:, :3].sum(1, keepdim=True)
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        mse = torch.nn.functional.mse_loss
        return _fit_with_targets(
            tmp_path / name,
            model,
            x,
            y,
            mse,
            lr=3e-3,
            epochs=6,
            shuffled=shuffled,
            meta={"loss": "mse"},
        )

    (finding,) = run("shuffled", True)
    assert "one prediction for every input" in finding.message
    assert finding.severity == Severity.WARNING
    assert run("clean", False) == []


def test_rl204_multilabel_logits_that_ignore_the_inputs_are_caught(tmp_path: Path) -> None:
    """Real runs: four labels of the same frequency trained with BCE on logits. Labels drawn
    apart from their inputs leave logits that differ between examples by a few hundredths (the
    classes' own logits differ as little, so only their absolute spread tells); labels that
    follow the inputs train, and nothing is said."""

    def run(name: str, shuffled: bool) -> list[Finding]:
        torch.manual_seed(0)
        x = torch.randn(2048, 8)
        y = (x[:, :4] > 0.3).float()
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        return _fit_with_targets(
            tmp_path / name, model, x, y, bce, lr=1e-2, epochs=8, shuffled=shuffled
        )

    (finding,) = run("shuffled", True)
    assert "one prediction for every input" in finding.message and "logit" in finding.message
    assert run("clean", False) == []


def test_rl204_min_drop_option() -> None:
    run = corpus("rl201-lr-div100")  # falls ~8 %: progress, slowly
    assert findings(LossNotDecreasing(), run) == []
    strict = LossNotDecreasing(LossNotDecreasing.Options(min_drop=0.5))
    assert findings(strict, run)


# -- RL205 lr-not-decayed ---------------------------------------------------------------------


def test_rl205_plateau_at_constant_lr_and_not_with_a_schedule() -> None:
    (finding,) = findings(LrNotDecayed(), corpus("rl205-constant-lr-plateau"))
    assert "never decayed" in finding.message and "ReduceLROnPlateau" in finding.fix
    assert findings(LrNotDecayed(), corpus("spiral-mlp-sgd-momentum")) == []  # step decay


def test_rl205_requires_validation_loss_and_lr(recorded: dict[str, Run]) -> None:
    assert "epochs.val_loss" in LrNotDecayed().missing(recorded["small_wd"])


# -- RL6xx optimizer settings -------------------------------------------------------------------


def _with_group(run: Run, **settings: object) -> Run:
    optimizer = copy.deepcopy(run.meta["optimizer"])
    for group in optimizer["groups"]:
        group.update(settings)
    return with_meta(run, optimizer=optimizer)


def test_rl601_adam_eps_and_betas_far_from_the_seed() -> None:
    run = corpus("blobs-mlp-adam-cosine")
    assert findings(AdamSettingsOff(), run) == []
    (finding,) = findings(AdamSettingsOff(), _with_group(run, eps=1.0, betas=[0.0, 0.5]))
    assert "eps 1" in finding.message and "beta1 0" in finding.message
    assert "beta2 0.5" in finding.message


def test_rl602_momentum_out_of_range_and_absent() -> None:
    run = corpus("spiral-mlp-sgd-momentum")
    assert findings(MomentumOff(), run) == []
    run = copy.copy(run)
    run.steps = run.steps.drop(columns=["momentum"])
    (finding,) = findings(MomentumOff(), _with_group(run, momentum=0.999))
    assert finding.severity == Severity.WARNING and "0.999" in finding.message
    (finding,) = findings(MomentumOff(), _with_group(run, momentum=1.0))
    assert finding.severity == Severity.ERROR
    long_run = MomentumOff(MomentumOff.Options(long_run=10))
    (finding,) = findings(long_run, _with_group(run, momentum=0.0))
    assert finding.severity == Severity.INFO and "nesterov" in finding.fix


def test_rl603_is_advice_only() -> None:
    for name in ("rl202-adam-lr-x30", "spiral-mlp-sgd-momentum", "blobs-mlp-adam-cosine"):
        run = corpus(name)
        assert all(f.severity == Severity.INFO for f in NoisyFinalValidation().check(run))


# -- all of them ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["images-cnn-sgd-warmup-cosine", "blobs-mlp-adam-onecycle"])
def test_rl204_does_not_judge_a_live_run_that_is_still_young_or_warming_up(name: str) -> None:
    flushes = Flushes(CORPUS / name)
    first = flushes.at(flushes.marks[0])  # its first flush (an epoch): the loss is still near ln C
    assert not first.complete and len(first.steps) < 50
    with pytest.raises(NotJudged, match=r"still young|still warming up"):
        list(LossNotDecreasing().check(first))
    assert findings(LossNotDecreasing(), flushes.at(flushes.steps)) == []


def test_rl204_warns_early_about_a_stuck_live_run_and_errs_once_it_has_trained_long() -> None:
    flushes = Flushes(CORPUS / "rl204-labels-shuffled-per-batch")
    (young,) = findings(LossNotDecreasing(), flushes.at(62))  # a quarter of the run, live
    assert young.severity == Severity.WARNING and "at chance level" in young.message
    (long,) = findings(
        LossNotDecreasing(LossNotDecreasing.Options(live_error_steps=60)), flushes.at(62)
    )
    assert long.severity == Severity.ERROR
    (closed,) = findings(LossNotDecreasing(), corpus("rl204-labels-shuffled-per-batch"))
    assert closed.severity == Severity.ERROR  # the run has ended: it never left chance


def _all_rules() -> Iterator[Rule]:
    yield from (
        InitialLossOff(),
        RegularizationOff(),
        NonFiniteLoss(),
        InitScaleOff(),
        LrTooLow(),
        LrTooHigh(),
        NoisyLoss(),
        LossNotDecreasing(),
        LrNotDecayed(),
        AdamSettingsOff(),
        MomentumOff(),
        NoisyFinalValidation(),
    )


def test_recorded_healthy_runs_get_no_warning(recorded: dict[str, Run]) -> None:
    run = recorded["small_wd"]
    for rule in _all_rules():
        if not rule.missing(run):
            assert all(f.severity == Severity.INFO for f in rule.check(run)), rule.code


def test_every_message_carries_a_number_and_a_fix() -> None:
    for name in ("rl101-last-layer-x50", "rl201-lr-div100", "rl205-constant-lr-plateau"):
        run = corpus(name)
        for rule in _all_rules():
            if rule.missing(run):
                continue
            for finding in rule.check(run):
                assert any(ch.isdigit() for ch in finding.message), finding.message
                assert finding.fix and finding.code == rule.code


# -- generalization: runs added for held-out kinds ---------------------------------------------


def test_rl102_sgd_weight_decay_is_judged_by_its_shrink_per_step() -> None:
    (finding,) = findings(RegularizationOff(), corpus("rl102-sgd-weight-decay-0.1"))
    assert "per step" in finding.message and "momentum 0.9" in finding.message
    assert finding.evidence["shrink_per_step"] == pytest.approx(0.05)
    # SGD + Nesterov at weight_decay 5e-4: a usual recipe, silent
    assert findings(RegularizationOff(), corpus("images3-cnn-deep-bn-nesterov-step")) == []


def test_rl202_few_averaged_points_count_one_by_one() -> None:
    (finding,) = findings(LrTooHigh(), corpus("rl202-hf-adamw-lr-x500"))
    assert "spiked" in finding.message and "one logged point" in finding.message
    assert findings(LrTooHigh(), corpus("hf-tokens-transformer-binary")) == []


def test_rl202_loss_that_fell_during_warmup_and_climbed_back() -> None:
    (finding,) = findings(LrTooHigh(), corpus("rl202-transformer-lr-x100"))
    assert "climbed back" in finding.message
    assert findings(LrTooHigh(), corpus("tokens-transformer-adamw-clip")) == []


def test_rl202_bounce_is_noise_scaled_by_the_batch_size() -> None:
    (finding,) = findings(LrTooHigh(), corpus("rl202-adam-lr-x30"))
    assert finding.evidence["scaled_noise"] > 3.0
    assert findings(LrTooHigh(), corpus("spiral-mlp-adam-3-epochs")) == []


def test_rl203_limit_is_higher_from_batch_16_on() -> None:
    run = corpus("spiral-mlp-adam-3-epochs")  # batch 32, healthy, ±15 % late in the run
    assert findings(NoisyLoss(), run) == []
    (finding,) = findings(NoisyLoss(NoisyLoss.Options(max_noise_large_batch=0.1)), run)
    assert "limit 10%" in finding.message


def test_rl205_adagrad_decays_on_its_own() -> None:
    assert findings(LrNotDecayed(), corpus("blobs-mlp-adagrad")) == []


def _plateau_run(val: list[float], train_end: float, *, acc: float = 0.9) -> Run:
    """A constant-lr run: the training loss falls from 2 to ``train_end`` (with noise), one
    epoch per 20 steps with the given validation losses."""
    import numpy as np
    import pandas as pd

    n = 20 * len(val)
    rng = np.random.default_rng(0)
    trend = train_end + (2.0 - train_end) * np.exp(-np.arange(n) / (n / 40))
    steps = pd.DataFrame(
        {"loss": trend * (1 + 0.05 * rng.standard_normal(n)), "lr": np.full(n, 0.1)},
        index=pd.RangeIndex(n, name="step"),
    )
    epochs = pd.DataFrame(
        {"step": 20 * np.arange(1, len(val) + 1) - 1, "val_loss": val, "val_acc": acc},
        index=pd.RangeIndex(len(val), name="epoch"),
    )
    return Run(Path("plateau"), steps=steps, epochs=epochs)


def test_rl205_warns_only_when_the_plateau_bounces_above_its_best_and_nothing_converged() -> None:
    flat = [2.0, 1.0, 0.6, *[0.5 + 0.001 * (i % 2) for i in range(12)]]
    (advice,) = findings(LrNotDecayed(), _plateau_run(flat, 0.4))
    assert advice.severity == Severity.INFO
    bouncing = [1.0, 0.6, 0.5, *[0.8 + 0.1 * (-1) ** i for i in range(12)]]
    (warning,) = findings(LrNotDecayed(), _plateau_run(bouncing, 0.6))
    assert warning.severity == Severity.WARNING and "bounces" in warning.message
    assert findings(LrNotDecayed(), _plateau_run(flat, 0.4, acc=1.0)) == []  # converged
    tiny = [2.0, 0.01, *[0.0005 + 0.0001 * (i % 2) for i in range(12)]]
    assert findings(LrNotDecayed(), _plateau_run(tiny, 0.0004)) == []  # fell 4000×
