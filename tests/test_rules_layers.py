"""Behaviour of the per-layer, activation, generalization and configuration rules (RL3/4/5/7)
beyond the corpus test (every expected code fires, healthy runs stay silent)."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from runlint.rules.rl301_overfit_gap import OverfitGap
from runlint.rules.rl302_underfit import Underfit
from runlint.rules.rl401_update_ratio_off import UpdateRatioOff
from runlint.rules.rl402_vanishing_gradients import VanishingGradients
from runlint.rules.rl403_exploding_gradients import ExplodingGradients
from runlint.rules.rl404_frozen_parameters import FrozenParameters
from runlint.rules.rl502_collapsed_activations import CollapsedActivations
from runlint.rules.rl503_dead_relu import DeadRelu
from runlint.rules.rl701_decay_on_bias_norm import DecayOnBiasNorm
from runlint.rules.rl702_batchnorm_after_activation import BatchNormAfterActivation
from runlint.rules.rl703_first_layer_unchanged import FirstLayerUnchanged
from torch import nn

import runlint
from runlint.analysis.layers import EMBEDDING, NORM, dense_update_ratios, param_table, params_long
from runlint.analysis.outputs import regression_evidence
from runlint.check.rule import Finding, Rule, Severity
from runlint.run import Run

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def corpus_run(name: str) -> Run:
    path = CORPUS / name
    if not path.is_dir():
        pytest.fail(f"corpus run {name} missing: run fixtures/make_corpus.py")
    return runlint.load_run(path)


def fault_run(code: str, optimizer: str = "") -> Run:
    """The first corpus run the manifest expects ``code`` on (optionally: with that optimizer)."""
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    for entry in manifest["runs"]:
        if code in entry["expect"]:
            run = runlint.load_run(CORPUS / entry["path"])
            if optimizer.lower() in str(run.meta["optimizer"]["class"]).lower():
                return run
    pytest.fail(f"no corpus run expects {code} with optimizer {optimizer!r}")


def check(rule: Rule, run: Run) -> list[Finding]:
    assert rule.missing(run) == [], rule.missing(run)
    return list(rule.check(run))


# -- small real recordings -------------------------------------------------------------------
Build = Callable[..., Run]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Train a tiny model for a few dozen steps and record it; returns the loaded run."""
    root = tmp_path_factory.mktemp("rules-layers")

    def build(
        name: str,
        model: Any,
        params: Any = None,
        *,
        optimizer: str = "sgd",
        lr: float = 0.05,
        weight_decay: float = 0.0,
        meta: dict[str, Any] | None = None,
        steps: int = 20,
        tokens: bool = False,
    ) -> Run:
        torch.manual_seed(0)
        if tokens:
            x = torch.randint(0, 16, (64, 4))
            y = x[:, 0] % 4
        else:
            x = torch.randn(64, 16)
            y = (x[:, :4]).argmax(1)
        params = list(model.parameters()) if params is None else params
        opt: torch.optim.Optimizer
        if optimizer == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
        with runlint.record(model, opt, root / name, meta=meta, stats_every=2) as rec:
            for _ in range(steps):
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
        return runlint.load_run(root / name)

    return build


def mlp(*widths: int, bn: str = "") -> Any:
    layers: list[Any] = []
    for a, b in itertools.pairwise(widths[:-1]):
        layers.append(nn.Linear(a, b))
        if bn == "before":
            layers.append(nn.BatchNorm1d(b))
        layers.append(nn.ReLU())
        if bn == "after":
            layers.append(nn.BatchNorm1d(b))
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


# -- RL401: peers, not absolute scales, for embeddings and norm layers ------------------------
def test_embedding_and_layernorm_with_unusual_update_ratio_are_not_flagged(record: Build) -> None:

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(16, 16)
            nn.init.normal_(self.emb.weight, std=300.0)  # Adam moves it by ~1e-3 per weight
            self.norm = nn.LayerNorm(16)
            self.body = mlp(16, 32, 32, 4)

        def forward(self, x: Any) -> Any:
            return self.body(self.norm(self.emb(x)).mean(1))

    run = record("odd-scales", Model(), optimizer="adam", lr=1e-3, tokens=True)
    long, table = params_long(run), param_table(run)
    med = long.median(long.col("update_ratio"))
    options = UpdateRatioOff.Options()
    assert table.loc["emb.weight", "kind"] == EMBEDDING
    assert table.loc["norm.weight", "kind"] == NORM
    assert med["emb.weight"] < options.low  # far off the ~1e-3 band on its own
    dense = dense_update_ratios(run)
    assert options.low < float(np.median(dense)) < options.high
    assert check(UpdateRatioOff(), run) == []


def test_rmsprop_inflated_first_step_is_not_read_as_too_high_lr() -> None:
    run = corpus_run("spiral-mlp-rmsprop-dropout")
    long = params_long(run)
    first = long.step == long.step.min()
    dense = dense_update_ratios(run).index
    ratio = long.col("update_ratio")
    at_start = float(np.median(ratio[first & np.isin(long.keys.to_numpy()[long.codes], dense)]))
    assert at_start > UpdateRatioOff.Options().high_early  # RMSprop's cache starts at 0
    assert check(UpdateRatioOff(), run) == []


def test_adam_first_step_ratio_flags_a_too_high_lr_with_numbers() -> None:
    (finding,) = check(UpdateRatioOff(), fault_run("RL401", optimizer="adam"))
    assert "first full-lr steps" in finding.message
    assert finding.evidence["early_ratio"] > 0.2
    assert "lower the learning rate" in finding.fix


def test_update_ratio_thresholds_are_options() -> None:
    run = fault_run("RL401", optimizer="sgd")
    (finding,) = check(UpdateRatioOff(), run)
    assert "raise the learning rate ×" in finding.fix
    assert f"{len(finding.evidence['per_layer'])} dense layers" in finding.message
    assert check(UpdateRatioOff(UpdateRatioOff.Options(low=1e-9)), run) == []


# -- RL404: frozen on purpose vs by mistake ----------------------------------------------------
def test_requires_grad_off_is_a_warning_naming_the_layer(record: Build) -> None:
    model = mlp(16, 32, 32, 32, 4)
    model[0].requires_grad_(False)
    run = record("frozen-first", model)
    (finding,) = check(FrozenParameters(), run)
    assert finding.severity == Severity.WARNING
    assert finding.where == "0.weight"
    assert "0.weight, 0.bias of layer 0 (544 values)" in finding.message
    assert "requires_grad=False" in finding.message


def test_freeze_declared_in_meta_is_not_reported(record: Build) -> None:
    model = mlp(16, 32, 32, 32, 4)
    model[0].requires_grad_(False)
    run = record("frozen-declared", model, meta={"frozen": ["0"]})
    assert param_table(run).loc["0.weight", "trainable"] == False  # noqa: E712
    assert check(FrozenParameters(), run) == []


def test_underfit_flags_dropout_that_hides_the_signal() -> None:
    (finding,) = check(Underfit(), corpus_run("rl302-dropout-0.9"))
    assert "dropout" in finding.fix and finding.evidence["val_minus_train"] > 0.2
    assert check(Underfit(), corpus_run("spiral-mlp-rmsprop-dropout")) == []


def test_frozen_backbone_prefix_is_info_only(record: Build) -> None:
    model = mlp(16, 64, 64, 8, 4)  # 2 wide input-side layers hold most parameters
    with torch.no_grad():  # stand-in for pre-trained weights: not a fresh init's scale
        model[0].weight.mul_(1.7)
        model[2].weight.mul_(0.6)
    for layer in (model[0], model[2]):
        layer.requires_grad_(False)
    run = record("frozen-backbone", model)
    findings = check(FrozenParameters(), run)
    assert [f.severity for f in findings] == [Severity.INFO]
    assert "frozen backbone" in findings[0].message


def test_frozen_backbone_at_its_random_init_is_a_warning(record: Build) -> None:
    model = mlp(16, 64, 64, 8, 4)
    for layer in (model[0], model[2]):
        layer.requires_grad_(False)
    run = record("frozen-random-backbone", model)
    (finding,) = check(FrozenParameters(), run)
    assert finding.severity == Severity.WARNING
    assert "fresh random init" in finding.message
    assert finding.evidence["cause"] == "random-init backbone"


def test_layer_left_out_of_the_optimizer_is_an_error(record: Build) -> None:
    model = mlp(16, 32, 32, 4)
    params = [*model[0].parameters(), *model[4].parameters()]
    run = record("left-out", model, params)
    findings = check(FrozenParameters(), run)
    assert [(f.severity, f.where) for f in findings] == [(Severity.ERROR, "2.weight")]
    assert "in no optimizer param group" in findings[0].message


# -- RL402/RL403: messages and options --------------------------------------------------------
def test_vanishing_gradients_message_names_layers_and_ratio() -> None:
    run = corpus_run("rl402-deep-sigmoid")
    (finding,) = check(VanishingGradients(), run)
    assert finding.where == "fc1.weight"
    assert "fc1.weight (input side)" in finding.message
    assert finding.evidence["input_output_ratio"] < 1e-6
    # the gradient comparison switched off, the updates still show input layers that never move
    (moved,) = check(VanishingGradients(VanishingGradients.Options(ratio=1e-12)), run)
    assert "hardly moves" in moved.message
    assert moved.where in ("fc1.weight", "fc2.weight", "fc3.weight")  # layers that move at all
    assert moved.evidence["input_update_ratio"] < 2e-5
    both_off = VanishingGradients.Options(ratio=1e-12, frozen=0.0)
    assert check(VanishingGradients(both_off), run) == []


def test_forgotten_zero_grad_shows_as_gradient_growth() -> None:
    run = corpus_run("rl403-no-zero-grad")
    (finding,) = check(ExplodingGradients(), run)
    assert "global gradient norm grows from" in finding.message
    assert finding.evidence["growth"] > 50
    assert check(ExplodingGradients(ExplodingGradients.Options(growth=1e6)), run) == []


@pytest.mark.parametrize("zero_grad_per_epoch", [False, True])
def test_zero_grad_once_per_epoch_shows_as_a_sawtooth(
    tmp_path: Path, zero_grad_per_epoch: bool
) -> None:
    """A real Adam run whose gradients accumulate over each epoch (zero_grad() outside the batch
    loop): the global norm climbs within epochs and falls back at their starts."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 20, generator=gen)
    y = x[:, :4].argmax(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    meta = {"num_classes": 4, "batch_size": 32}
    with runlint.record(model, opt, tmp_path, meta=meta, stats_every=2) as rec:
        for _ in range(6):
            if zero_grad_per_epoch:
                opt.zero_grad()
            for i in range(0, len(x), 32):
                loss = nn.functional.cross_entropy(model(x[i : i + 32]), y[i : i + 32])
                if not zero_grad_per_epoch:
                    opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
            rec.log_epoch(train_loss=loss)
    findings = check(ExplodingGradients(), runlint.load_run(tmp_path))
    if not zero_grad_per_epoch:
        assert findings == []
        return
    (finding,) = findings
    assert finding.severity == Severity.WARNING
    assert "falls back at each epoch start" in finding.message
    assert max(finding.evidence["drops"]) < 0.5 and len(finding.evidence["drops"]) == 5


# -- RL5: NaN forward passes are not dead or collapsed units ----------------------------------
def test_nan_activations_after_divergence_are_not_dead_or_collapsed() -> None:
    run = corpus_run("rl103-lr-x1000-nan")
    assert not np.isfinite(run.activations["mean"].to_numpy(dtype=float)).all()
    assert check(DeadRelu(), run) == []
    assert check(CollapsedActivations(), run) == []


def test_dead_relu_reports_module_and_percentages_and_obeys_options() -> None:
    run = corpus_run("rl503-negative-relu-bias")
    (finding,) = check(DeadRelu(), run)
    assert finding.where is not None and finding.where in finding.message
    assert "% of the units of module" in finding.message
    assert check(DeadRelu(DeadRelu.Options(units=1.0, off_at_start=1.0)), run) == []


def test_saturation_is_judged_from_the_start_not_when_it_develops(tmp_path: Path) -> None:
    from runlint.rules.rl501_saturated_activations import SaturatedActivations

    run = corpus_run("rl501-large-init-tanh")
    (finding,) = check(SaturatedActivations(), run)
    assert "at step 0" in finding.message and finding.where == "tanh3"
    grown = tmp_path / "grown"  # the same run, but every layer started unsaturated
    shutil.copytree(run.path, grown)
    acts = pd.read_parquet(grown / "activations-r0.parquet")
    acts.loc[acts["step"] == acts["step"].min(), "saturated"] = 0.0
    acts.to_parquet(grown / "activations-r0.parquet")
    assert check(SaturatedActivations(), runlint.load_run(grown)) == []


def test_relu_units_off_for_most_inputs_from_the_start_are_a_warning(record: Build) -> None:
    """Biases of −1 leave each unit alive but firing for a few inputs (~4 %): no layer is dead,
    yet most of its outputs are 0 from the first step on; the default init is silent."""
    model = mlp(16, 64, 4)
    with torch.no_grad():
        model[0].bias.fill_(-1.0)
    (finding,) = check(DeadRelu(), record("negative-bias", model))
    assert finding.severity == Severity.WARNING and "fire for few inputs" in finding.message
    assert check(DeadRelu(), record("default-bias", mlp(16, 64, 4))) == []


def test_dead_relu_that_died_during_training_is_advice_dead_from_the_start_a_warning(
    tmp_path: Path,
) -> None:
    run = corpus_run("rl503-negative-relu-bias")  # a negative bias: every unit dead at step 0

    def partly_dead(first_step: float) -> Run:
        copied = tmp_path / f"dead-{first_step}"
        shutil.copytree(run.path, copied)
        acts = pd.read_parquet(copied / "activations-r0.parquet")
        acts["dead_units"] = acts["dead_units"] * 0.8  # 80% dead: not every unit
        acts.loc[acts["step"] == acts["step"].min(), "dead_units"] = first_step
        acts.to_parquet(copied / "activations-r0.parquet")
        return runlint.load_run(copied)

    (from_start,) = check(DeadRelu(), partly_dead(0.8))
    assert from_start.severity == Severity.WARNING and "dead from the start" in from_start.message
    (died,) = check(DeadRelu(), partly_dead(0.1))
    assert died.severity == Severity.INFO and "died during training" in died.message


# -- RL301/RL302 ------------------------------------------------------------------------------
def test_overfit_gap_threshold_is_an_option() -> None:
    run = corpus_run("rl301-tiny-train-set")
    (finding,) = check(OverfitGap(), run)
    assert finding.evidence["gap"] > 0.15
    assert "train accuracy" in finding.message and "gap" in finding.message
    assert check(OverfitGap(OverfitGap.Options(gap=0.9, gap_min=0.9)), run) == []


def test_overfit_warns_on_a_memorizing_gap_not_on_a_run_trained_past_its_best_epoch(
    tmp_path: Path,
) -> None:
    run = corpus_run("rl301-tiny-train-set")  # train accuracy 1.0, validation ~0.72

    def variant(name: str, gap: float | None, train_end: float) -> Run:
        copied = tmp_path / name
        shutil.copytree(run.path, copied)
        epochs = pd.read_parquet(copied / "epochs-r0.parquet")
        n = len(epochs)
        late = np.arange(n) >= n // 3
        epochs["val_loss"] = np.where(late, 2.0, 1.0)  # 2× its minimum over the late epochs
        epochs["train_loss"] = np.linspace(1.0, train_end, n)
        if gap is None:  # regression: no accuracy, the loss pattern alone
            epochs = epochs.drop(columns=["train_acc", "val_acc"])
        else:
            epochs["val_acc"] = epochs["train_acc"] - gap
        epochs.to_parquet(copied / "epochs-r0.parquet")
        return runlint.load_run(copied)

    (past_best,) = check(OverfitGap(), variant("past-best", 0.16, 0.05))
    assert past_best.severity == Severity.INFO and "validation loss rose" in past_best.message
    (memorizing,) = check(OverfitGap(), variant("memorizing", 0.22, 0.05))
    assert memorizing.severity == Severity.WARNING
    (regression,) = check(OverfitGap(), variant("regression", None, 0.05))
    assert regression.severity == Severity.WARNING
    # the validation loss rose but the training loss barely moved: a bounce, not memorizing
    assert check(OverfitGap(), variant("bounce", None, 0.8)) == []


def test_overfitting_is_judged_live_from_the_epochs_so_far() -> None:
    from runlint.check.engine import discover
    from runlint.check.live import live_rules
    from runlint.run.replay import Flushes

    assert "RL301" in {rule.code for rule in live_rules(cls() for cls in discover().rules)}
    tiny = Flushes(CORPUS / "rl301-tiny-train-set", live=True)  # 50 epochs of 15 steps
    (early,) = check(OverfitGap(), tiny.at(3 * 15))  # after 3 epochs: 2 % of the run
    assert early.severity == Severity.WARNING and "train accuracy" in early.message
    healthy = Flushes(CORPUS / "spiral-mlp-sgd-momentum", live=True)
    assert [mark for mark, run in healthy if check(OverfitGap(), run)] == []


@pytest.mark.parametrize("meta", [{"loss": "mse"}, {}], ids=["named", "unnamed"])
def test_a_regression_that_memorizes_a_tiny_training_set_shows_as_a_loss_gap(
    tmp_path: Path, meta: dict[str, str]
) -> None:
    """Real regressions: 32 training examples fitted to ~0 leave the validation loss far above
    the training loss (warning); 1024 examples of the same task do not. Unnamed, the loss is
    read as a regression's from the output (one unit, no accuracy, no sigmoid gradient)."""

    def fit(name: str, n_train: int) -> list[Finding]:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n_train + 512, 8, generator=gen)
        y = torch.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.3 * torch.randn(len(x), generator=gen)
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1)
        )
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt, xv, yv = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
        with runlint.record(model, opt, tmp_path / name, meta=meta) as rec:
            for _ in range(20):
                for i in range(0, n_train, 32):
                    loss = nn.functional.mse_loss(model(xt[i : i + 32])[:, 0], yt[i : i + 32])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    rec.log(loss=loss)
                with torch.no_grad():
                    train = float(nn.functional.mse_loss(model(xt)[:, 0], yt))
                    val = float(nn.functional.mse_loss(model(xv)[:, 0], yv))
                rec.log_epoch(train_loss=train, val_loss=val)
        return check(OverfitGap(), runlint.load_run(tmp_path / name))

    (finding,) = fit("tiny", 32)
    assert finding.severity == Severity.WARNING and "the training loss" in finding.message
    assert ("say regression" in finding.message) == (not meta)
    assert fit("plenty", 1024) == []


def test_a_binary_classifier_with_an_unnamed_loss_is_not_read_as_a_regression(
    tmp_path: Path,
) -> None:
    """One logit trained with BCE-with-logits, no accuracy logged: its gradient is σ(x) − y."""
    torch.manual_seed(0)
    x = torch.randn(512, 4)
    y = (x[:, 0] > 0).float()
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with runlint.record(model, opt, tmp_path / "bce") as rec:
        for i in range(0, 512, 32):
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(x[i : i + 32])[:, 0], y[i : i + 32]
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
    assert regression_evidence(runlint.load_run(tmp_path / "bce")) is None


def test_underfit_is_not_blamed_on_capacity_when_weights_barely_move() -> None:
    run = corpus_run("rl201-rmsprop-lr-div100")  # lr ÷100: flat, low, tight
    assert check(Underfit(), run) == []
    (finding,) = check(Underfit(Underfit.Options(min_update_ratio=0.0)), run)
    assert "too small" in finding.message


def test_regression_underfit_is_advice_only(record: Build) -> None:
    run = corpus_run("regression-mlp-adam")
    assert check(Underfit(), run) == []
    (finding,) = check(Underfit(Underfit.Options(loss_level=0.0, plateau=10.0)), run)
    assert finding.severity == Severity.INFO


def test_underfit_warns_only_when_the_model_graph_shows_what_caps_it(record: Build) -> None:
    from runlint.analysis.layers import capacity_limit

    narrow = record("narrow", mlp(16, 32, 2, 32, 4), steps=4)
    linear = record("linear", nn.Sequential(nn.Linear(16, 4)), steps=4)
    wide = record("wide", mlp(16, 32, 32, 4), steps=4)
    assert capacity_limit(narrow) == "hidden layer 2 is 2 wide, narrower than the 4 classes"
    assert "single Linear layer" in str(capacity_limit(linear))
    assert capacity_limit(wide) is None
    # a healthy run judged by a strict level: without a structural cause it is advice only
    relaxed = Underfit(Underfit.Options(level=1.0, plateau=10.0, tight=1.0, min_update_ratio=0))
    (finding,) = check(relaxed, corpus_run("spiral-mlp-sgd-momentum"))
    assert finding.severity == Severity.INFO and "may be too small" in finding.message


def test_a_linear_model_trained_one_epoch_on_a_nonlinear_task_is_a_warning(
    tmp_path: Path,
) -> None:
    """A real one-epoch run: a single Linear layer on rings (the class is the radius band) stays
    near chance on train and validation; its cap is in the graph, so one epoch is enough."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3072, 2, generator=gen)
    y = torch.bucketize(x.norm(dim=1), torch.tensor([0.75, 1.18, 1.67]))  # 4 rings, ~1/4 each
    xt, yt, xv, yv = x[:2048], y[:2048], x[2048:], y[2048:]

    def one_epoch(name: str, model: nn.Module) -> Run:
        torch.manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        with runlint.record(model, opt, tmp_path / name, meta={"num_classes": 4}) as rec:
            hits = 0
            for i in range(0, len(xt), 32):
                out = model(xt[i : i + 32])
                loss = nn.functional.cross_entropy(out, yt[i : i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
                hits += int((out.argmax(1) == yt[i : i + 32]).sum())
            with torch.no_grad():
                val = float((model(xv).argmax(1) == yv).float().mean())
            rec.log_epoch(train_acc=hits / len(xt), val_acc=val)
        return runlint.load_run(tmp_path / name)

    (finding,) = check(Underfit(), one_epoch("linear", nn.Linear(2, 4)))
    assert finding.severity == Severity.WARNING and "single Linear layer" in finding.message
    assert check(Underfit(), one_epoch("mlp", mlp(2, 64, 64, 4))) == []  # no cap: too few epochs


def test_underfit_is_judged_live_only_when_the_graph_caps_the_model() -> None:
    from runlint.run.replay import Flushes

    capped = Flushes(CORPUS / "rl302-width-2-bottleneck")
    (finding,) = check(Underfit(), capped.at(capped.steps // 4))  # a quarter in, still training
    assert finding.severity == Severity.WARNING and "narrower than" in finding.message
    dropout = Flushes(CORPUS / "rl302-dropout-0.9")  # no cap in the graph: judged at the end
    assert check(Underfit(), dropout.at(dropout.steps // 2)) == []
    assert check(Underfit(), runlint.load_run(CORPUS / "rl302-dropout-0.9"))


def test_batchnorm_at_a_tiny_batch_is_a_warning_whatever_the_loss(record: Build) -> None:
    from runlint.rules.rl203_noisy_loss import NoisyLoss

    model = mlp(16, 32, 32, 4, bn="before")
    tiny = record("bn-batch-2", model, meta={"batch_size": 2}, steps=30)
    (finding,) = check(NoisyLoss(), tiny)
    assert finding.severity == Severity.WARNING and finding.evidence["batchnorm"] == ["1", "4"]
    assert check(NoisyLoss(), record("bn-batch-64", model, meta={"batch_size": 64}, steps=30)) == []
    plain = record("plain-batch-2", mlp(16, 32, 32, 4), meta={"batch_size": 2}, steps=30)
    assert not [f for f in check(NoisyLoss(), plain) if "BatchNorm" in f.message]


def test_layers_feeding_batchnorm_are_not_judged_for_vanishing_gradients(record: Build) -> None:
    from runlint.analysis.layers import batchnorm_inputs

    normed = record("bn-deep", mlp(16, 32, 32, 32, 4, bn="before"), steps=10)
    plain = record("plain-deep", mlp(16, 32, 32, 32, 4), steps=10)
    assert batchnorm_inputs(normed) == {"0", "3", "6"} and batchnorm_inputs(plain) == set()
    everything = VanishingGradients(VanishingGradients.Options(ratio=1e9))  # flags any depth
    assert check(everything, normed) == []  # only the head is left: too few layers to judge
    assert len(check(everything, plain)) == 1


# -- RL7xx: configuration the dynamics hide ---------------------------------------------------
def test_batchnorm_after_the_nonlinearity_is_reported(record: Build) -> None:
    after = record("bn-after", mlp(16, 32, 32, 4, bn="after"), steps=10)
    before = record("bn-before", mlp(16, 32, 32, 4, bn="before"), steps=10)
    (finding,) = check(BatchNormAfterActivation(), after)
    assert finding.severity == Severity.INFO
    assert finding.evidence["modules"] == ["2", "5"]  # Linear 0, ReLU 1, BN 2, ...
    assert check(BatchNormAfterActivation(), before) == []


def test_weight_decay_on_biases_is_advice(record: Build) -> None:
    run = record("decay-all", mlp(16, 32, 4, bn="before"), weight_decay=5e-4, steps=10)
    (finding,) = check(DecayOnBiasNorm(), run)
    assert finding.severity == Severity.INFO
    assert {"0.bias", "1.weight", "1.bias", "3.bias"} <= set(finding.evidence["params"])
    assert "0.weight" not in finding.evidence["params"]
    assert check(DecayOnBiasNorm(), corpus_run("images3-cnn-adamw-groups")) == []


def test_first_layer_unchanged_leaves_frozen_first_layers_to_rl404() -> None:
    (finding,) = check(FirstLayerUnchanged(), fault_run("RL401", optimizer="sgd"))
    assert finding.where == "fc1.weight" and "%" in finding.message
    assert check(FirstLayerUnchanged(), corpus_run("rl404-requires-grad-off")) == []
    assert check(FirstLayerUnchanged(), corpus_run("tokens-transformer-adamw-smoothing")) == []
