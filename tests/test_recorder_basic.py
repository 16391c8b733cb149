"""The recorder captures every signal of a real (tiny) CPU training run, and ``load_run`` reads
them back. One session-scoped run is shared by most tests; it keeps the test's own reference
values (computed independently of the recorder) next to the run directory."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import runlint
from runlint.recorder.kernels import histogram_edges
from runlint.recorder.probes import Activations

STEPS = 40
BATCH = 32
LR = 0.05
ACTS = {"1": "tanh", "3": "sigmoid", "5": "relu", "7": "gelu", "9": "leaky_relu"}


def mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(8, 16),
        nn.Tanh(),
        nn.Linear(16, 16),
        nn.Sigmoid(),
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Linear(16, 16),
        nn.GELU(),
        nn.Linear(16, 16),
        nn.LeakyReLU(0.1),
        nn.Linear(16, 4),
    )


@dataclass
class Recorded:
    run: runlint.Run
    lrs: list[float] = field(default_factory=list)
    grad_norms: dict[tuple[int, str], float] = field(default_factory=dict)
    param_norms: dict[tuple[int, str], float] = field(default_factory=dict)
    update_norms: dict[tuple[int, str], float] = field(default_factory=dict)
    acts: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)
    grads: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)
    first_weight: dict[int, torch.Tensor] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)


@pytest.fixture(scope="session")
def sgd_run(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Plain SGD (no momentum), StepLR halving every 10 steps, five activation kinds."""
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    x = torch.randn(STEPS, BATCH, 8) * 3  # large inputs so the tanh saturates in part
    y = torch.randint(0, 4, (STEPS, BATCH))
    logdir = tmp_path_factory.mktemp("sgd") / "run"
    ref = Recorded(run=None)  # type: ignore[arg-type]
    captured: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if name in ACTS:
            module.register_forward_hook(
                lambda m, i, o, name=name: captured.__setitem__(name, o.detach().clone())
            )
    with runlint.record(
        model,
        opt,
        logdir,
        meta={"num_classes": 4},
        stats_every=5,
        hist_every=10,
        weights_every=20,
        flush_every=7,
    ) as rec:
        for step in range(STEPS):
            loss = nn.functional.cross_entropy(model(x[step]), y[step])
            opt.zero_grad()
            loss.backward()
            ref.lrs.append(opt.param_groups[0]["lr"])
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            ref.first_weight[step] = model[0].weight.detach().clone()
            for n, p in model.named_parameters():
                ref.grad_norms[step, n] = float(p.grad.norm())
                ref.grads[step, n] = p.grad.detach().clone()
            for name, out in captured.items():
                ref.acts[step, name] = out
            opt.step()
            for n, p in model.named_parameters():
                ref.param_norms[step, n] = float(p.detach().norm())
                ref.update_norms[step, n] = float((p.detach() - before[n]).norm())
            rec.log(loss=loss, half=loss / 2, seven=7)
            ref.losses.append(float(loss.detach()))
            sched.step()
        ref.first_weight[STEPS] = model[0].weight.detach().clone()
        rec.log_epoch(train_loss=loss, val_acc=0.25)
    ref.run = runlint.load_run(logdir)
    return ref


def test_loss_and_user_scalars_recorded_every_step(sgd_run: Recorded) -> None:
    steps = sgd_run.run.steps
    assert list(steps.index) == list(range(STEPS))
    np.testing.assert_allclose(steps["loss"], sgd_run.losses, rtol=1e-6)
    np.testing.assert_allclose(steps["half"], np.array(sgd_run.losses) / 2, rtol=1e-6)
    assert (steps["seven"] == 7).all()
    assert steps["time"].is_monotonic_increasing


def test_learning_rate_follows_the_scheduler_every_step(sgd_run: Recorded) -> None:
    groups = sgd_run.run.groups
    assert list(groups["step"]) == list(range(STEPS))
    np.testing.assert_allclose(groups["lr"], sgd_run.lrs)
    assert groups["lr"].iloc[0] == LR and groups["lr"].iloc[-1] == LR / 8
    np.testing.assert_allclose(sgd_run.run.steps["lr"], sgd_run.lrs)
    assert (groups["momentum"] == 0).all() and (groups["weight_decay"] == 0).all()


def test_param_norms_and_update_ratio_match_a_hand_computation(sgd_run: Recorded) -> None:
    params = sgd_run.run.params
    assert sorted(set(params["step"])) == list(range(0, STEPS, 5))
    assert set(params["param"]) == {n for _, n in sgd_run.grad_norms}
    for row in params.itertuples():
        key = (row.step, row.param)
        assert row.grad_norm == pytest.approx(sgd_run.grad_norms[key], rel=1e-5)
        assert row.param_norm == pytest.approx(sgd_run.param_norms[key], rel=1e-5)
        assert row.update_norm == pytest.approx(sgd_run.update_norms[key], rel=1e-4, abs=1e-9)
        hand = sgd_run.update_norms[key] / sgd_run.param_norms[key]
        assert row.update_ratio == pytest.approx(hand, rel=1e-4)
        # plain SGD: the update is lr * gradient, so the ratio is lr * |g| / |theta|; float32
        # cancellation in theta_after - theta_before limits the agreement to about 1e-3
        lr = sgd_run.lrs[row.step]
        expected = lr * sgd_run.grad_norms[key] / sgd_run.param_norms[key]
        assert row.update_ratio == pytest.approx(expected, rel=1e-2)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_update_norm_of_a_large_parameter_from_its_strided_sample(
    tmp_path: Path, optimizer: str
) -> None:
    """A parameter over ``max_elems`` values has its update measured on a strided sample and
    scaled: within a few percent of the whole update; smaller ones stay exact."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.Tanh(), nn.Linear(512, 4))
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.AdamW(model.parameters(), lr=1e-3)
    )
    exact: dict[tuple[int, str], float] = {}
    with runlint.record(model, opt, tmp_path / "r", stats_every=1, max_elems=1024) as rec:
        for step in range(6):
            loss = nn.functional.cross_entropy(
                model(torch.randn(32, 64)), torch.randint(0, 4, (32,))
            )
            opt.zero_grad()
            loss.backward()
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            opt.step()
            for n, p in model.named_parameters():
                exact[step, n] = float((p.detach() - before[n]).norm())
            rec.log(loss=loss)
    params = runlint.load_run(tmp_path / "r").params
    for row in params.itertuples():
        numel = dict(model.named_parameters())[row.param].numel()
        rel = 0.05 if numel > 1024 else 1e-4  # 64 x 512 and 512 x 4: sampled; biases: exact
        assert row.update_norm == pytest.approx(exact[row.step, row.param], rel=rel), row


def _expected_stats(out: torch.Tensor, kind: str) -> dict[str, float]:
    flat = out.reshape(-1)
    saturated = math.nan
    if kind == "tanh":
        saturated = float((flat.abs() > 0.99).float().mean())
    elif kind == "sigmoid":
        saturated = float(((flat < 0.01) | (flat > 0.99)).float().mean())
    return {
        "mean": float(flat.mean()),
        "std": float(flat.std()),
        "saturated": saturated,
        "dead": float((flat <= 0).float().mean()),
        "dead_units": float((out <= 0).all(dim=0).float().mean()),
    }


def test_activation_statistics_per_kind(sgd_run: Recorded) -> None:
    acts = sgd_run.run.activations
    assert dict(zip(acts["module"], acts["kind"], strict=True)) == ACTS
    assert sorted(set(acts["step"])) == list(range(0, STEPS, 5))
    for row in acts.itertuples():
        expected = _expected_stats(sgd_run.acts[row.step, row.module], row.kind)
        for column, value in expected.items():
            got = getattr(row, column)
            if math.isnan(value):
                assert math.isnan(got), (row.module, column)
            else:
                assert got == pytest.approx(value, rel=1e-4, abs=1e-6), (row.module, column)
    tanh = acts[acts["kind"] == "tanh"]
    assert (tanh["saturated"] > 0).all()  # the inputs were scaled up to saturate it


def test_histograms_of_activations_and_gradients(sgd_run: Recorded) -> None:
    hist = sgd_run.run.histograms
    assert sorted(set(hist["step"])) == [0, 10, 20, 30]
    act = hist[hist["source"] == "activation"]
    grad = hist[hist["source"] == "gradient"]
    assert set(act["name"]) == set(ACTS)
    assert len(grad) == 4 * len(sgd_run.run.meta["params"])
    for row in act.itertuples():
        assert sum(row.counts) == BATCH * 16
        assert len(row.counts) == len(row.edges) + 1
        kind = ACTS[row.name]
        assert list(row.edges) == pytest.approx(histogram_edges(kind))
        values = sgd_run.acts[row.step, row.name].reshape(-1).numpy()
        expected = np.bincount(
            np.searchsorted(np.asarray(histogram_edges(kind), dtype=np.float32), values),
            minlength=len(row.edges) + 1,
        )
        np.testing.assert_array_equal(row.counts, expected)
    for row in grad.itertuples():
        g = sgd_run.grads[row.step, row.name]
        assert sum(row.counts) == g.numel()


def test_first_layer_weights_snapshotted_at_start_schedule_and_end(sgd_run: Recorded) -> None:
    weights = sgd_run.run.weights
    assert list(weights["step"]) == [0, 20, STEPS]
    for row in weights.itertuples():
        assert row.param == "0.weight"
        assert list(row.shape) == [16, 8]
        expected = sgd_run.first_weight[row.step].reshape(-1).numpy()
        np.testing.assert_allclose(row.values, expected, rtol=1e-6)


def test_metadata_given_and_inferred(sgd_run: Recorded) -> None:
    meta = sgd_run.run.meta
    assert meta["num_classes"] == 4 and meta["provenance"]["num_classes"] == "given"
    assert meta["batch_size"] == BATCH
    assert meta["provenance"]["batch_size"].startswith("inferred")
    assert meta["optimizer"]["class"] == "SGD"
    assert meta["optimizer"]["groups"][0]["lr"] == LR
    assert meta["world_size"] == 1 and meta["device"] == "cpu"
    assert meta["torch_version"] == torch.__version__
    assert meta["steps"] == STEPS and meta["epochs"] == 1
    assert meta["probes_off"] == {}
    first = meta["params"][0]
    assert first["name"] == "0.weight" and first["shape"] == [16, 8] and first["numel"] == 128
    assert first["module_type"] == "Linear" and first["role"] == "weight"
    assert first["fan_in"] == 8 and first["in_optimizer"] and first["group"] == 0
    assert first["init_std"] == pytest.approx(1 / math.sqrt(8) / math.sqrt(3), rel=0.2)
    kinds = {m["name"]: m["activation"] for m in meta["modules"] if m["activation"]}
    assert kinds == ACTS
    assert sgd_run.run.complete


def test_epochs_table(sgd_run: Recorded) -> None:
    epochs = sgd_run.run.epochs
    assert list(epochs.index) == [0]
    assert epochs["step"].iloc[0] == STEPS
    assert epochs["train_loss"].iloc[0] == pytest.approx(sgd_run.losses[-1], rel=1e-6)
    assert epochs["val_acc"].iloc[0] == 0.25


def test_compacted_on_close(sgd_run: Recorded) -> None:
    root = sgd_run.run.path
    assert not (root / "parts").exists()
    names = sorted(p.name for p in root.iterdir())
    assert "meta.json" in names and "steps-r0.parquet" in names and "params-r0.parquet" in names
    assert not [n for n in names if n.endswith(".tmp")]


def _train(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    logdir: Path,
    steps: int,
    *,
    micro: int = 1,
    call: Any = None,
    **options: Any,
) -> runlint.Run:
    torch.manual_seed(1)
    forward = call or model
    with runlint.record(model, opt, logdir, **options) as rec:
        for _ in range(steps):
            opt.zero_grad()
            for _ in range(micro):
                out = forward(torch.randn(8, 8))
                logits = out["logits"] if isinstance(out, dict) else out
                loss = nn.functional.cross_entropy(logits, torch.randint(0, 4, (8,))) / micro
                loss.backward()
                rec.log(loss=loss)
            opt.step()
    return runlint.load_run(logdir)


def test_no_meta_infers_classes_and_batch_size(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    run = _train(model, torch.optim.SGD(model.parameters(), lr=0.1), tmp_path / "r", 3)
    assert run.meta["num_classes"] == 4 and run.meta["batch_size"] == 8
    assert run.meta["provenance"]["num_classes"].startswith("inferred")
    assert run.meta["provenance"]["batch_size"].startswith("inferred")


def test_gradient_accumulation_counts_optimizer_steps(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = _train(model, opt, tmp_path / "r", 5, micro=3, stats_every=2)
    assert list(run.steps.index) == list(range(5))
    raw = run.raw["steps"]
    assert len(raw) == 15 and sorted(set(raw["micro"])) == [0, 1, 2]
    assert list(run.groups["step"]) == list(range(5))
    assert sorted(set(run.params["step"])) == [0, 2, 4]
    assert len(run.raw["activations"]) == 3 * 3  # every micro-batch of steps 0, 2, 4
    assert run.meta["steps"] == 5


def test_several_param_groups_with_adam(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    opt = torch.optim.AdamW(
        [
            {"params": model[0].parameters(), "lr": 1e-3, "weight_decay": 0.0},
            {"params": model[2].parameters(), "lr": 1e-2, "betas": (0.8, 0.95)},
        ],
        weight_decay=0.1,
        eps=1e-7,
    )
    run = _train(model, opt, tmp_path / "r", 4, stats_every=1)
    groups = run.groups
    assert len(groups) == 8
    g0 = groups[groups["group"] == 0]
    g1 = groups[groups["group"] == 1]
    np.testing.assert_allclose(
        g0[["lr", "weight_decay", "beta1", "beta2"]], [[1e-3, 0, 0.9, 0.999]] * 4
    )
    np.testing.assert_allclose(
        g1[["lr", "weight_decay", "beta1", "beta2"]], [[1e-2, 0.1, 0.8, 0.95]] * 4
    )
    np.testing.assert_allclose(groups["eps"], 1e-7)
    groups_of = {p["name"]: p["group"] for p in run.meta["params"]}
    assert groups_of == {"0.weight": 0, "0.bias": 0, "2.weight": 1, "2.bias": 1}
    assert len(run.params) == 4 * 4 and run.params["update_ratio"].gt(0).all()


def test_group_settings_every_step_across_changes_and_flushes(tmp_path: Path) -> None:
    """Settings are stored only where they change; every step still reads back as it was,
    through a cyclic schedule, a group added mid-run, betas replaced and several flushes."""
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.Adam(model[0].parameters(), lr=0.01)
    expected: list[tuple[int, int, float, float, float]] = []
    torch.manual_seed(1)
    with runlint.record(model, opt, tmp_path / "r", flush_every=4) as rec:
        for step in range(17):
            if step == 6:
                opt.add_param_group({"params": model[2].parameters(), "lr": 0.5})
            if step == 11:
                opt.param_groups[0]["betas"] = (0.5, 0.75)
            if step % 3 == 0:  # a cyclic schedule, set by hand
                opt.param_groups[0]["lr"] = 0.001 * (1 + step % 4)
            expected += [
                (step, i, g["lr"], g["betas"][0], g["betas"][1])
                for i, g in enumerate(opt.param_groups)
            ]
            loss = nn.functional.cross_entropy(model(torch.randn(8, 8)), torch.randint(0, 4, (8,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
    groups = runlint.load_run(tmp_path / "r").groups
    got = groups[["step", "group", "lr", "beta1", "beta2"]].to_numpy()
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-12)


class PairTanh(nn.Tanh):
    """An activation module that returns a tuple."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        out = super().forward(x)
        return out, out.detach().sign()


class DictNet(nn.Module):
    """A model whose submodules return tuples and which returns a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.act = PairTanh()
        self.relu = nn.ReLU()
        self.out = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h, _signs = self.act(self.inp(x))
        return {"logits": self.out(self.relu(h)), "hidden": h}


def test_modules_returning_tuples_and_dicts(tmp_path: Path) -> None:
    model = DictNet()
    run = _train(
        model, torch.optim.SGD(model.parameters(), lr=0.1), tmp_path / "r", 3, stats_every=1
    )
    acts = run.activations
    assert set(zip(acts["module"], acts["kind"], strict=True)) == {
        ("act", "tanh"),
        ("relu", "relu"),
    }
    assert len(acts) == 6 and acts["std"].gt(0).all()
    assert len(run.steps) == 3


def test_hooks_and_tensor_lr_do_not_alias_later_values(tmp_path: Path) -> None:
    """A tensor lr changed in place by a scheduler is recorded as it was at each step."""
    model = nn.Sequential(nn.Linear(8, 4))
    opt = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    torch.manual_seed(1)
    with runlint.record(model, opt, tmp_path / "r", flush_every=100) as rec:
        for _ in range(4):
            loss = model(torch.randn(8, 8)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
            sched.step()
    run = runlint.load_run(tmp_path / "r")
    np.testing.assert_allclose(run.groups["lr"], [0.01, 0.005, 0.0025, 0.00125], rtol=1e-6)


def test_torch_compiled_model(tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    compiled = torch.compile(model, backend="aot_eager")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = _train(compiled, opt, tmp_path / "r", 8, stats_every=2)
    assert list(run.steps.index) == list(range(8))
    assert sorted(set(run.activations["step"])) == [0, 2, 4, 6]
    assert sorted(set(run.params["step"])) == [0, 2, 4, 6]
    assert run.meta["params"][0]["name"] == "0.weight"  # not "_orig_mod.0.weight"
    assert counters["stats"]["unique_graphs"] <= 4  # no recompilation per step


def test_grad_scaler_skipped_step_is_not_counted(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(8, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    torch.manual_seed(1)
    grad_norms = []
    with runlint.record(model, opt, tmp_path / "r", stats_every=1) as rec:
        for i in range(5):
            loss = model(torch.randn(8, 8)).pow(2).mean()
            if i == 2:
                loss = loss * math.inf  # overflow: the scaler skips this step
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            grad_norms.append(float(model[0].weight.grad.norm()))
            scaler.step(opt)
            scaler.update()
            rec.log(loss=loss)
    run = runlint.load_run(tmp_path / "r")
    assert run.meta["steps"] == 4
    assert list(run.groups["step"]) == [0, 1, 2, 3]
    weight = run.params[run.params["param"] == "0.weight"]
    kept = [g for i, g in enumerate(grad_norms) if i != 2]
    np.testing.assert_allclose(weight["grad_norm"], kept, rtol=1e-5)  # unscaled gradients


def test_activation_hooks_only_during_stats_step_forwards(tmp_path: Path) -> None:
    """Eager models carry no activation hooks between statistics steps (they cost time)."""
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hooked = []
    with runlint.record(model, opt, tmp_path / "r", stats_every=3) as rec:
        for _ in range(6):
            loss = model(torch.randn(8, 8)).pow(2).mean()
            hooked.append(len(model[1]._forward_hooks))
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
    assert hooked == [1, 0, 0, 1, 0, 0]
    assert len(model[1]._forward_hooks) == 0
    assert sorted(set(runlint.load_run(tmp_path / "r").activations["step"])) == [0, 3]


def test_activation_statistics_the_same_when_taken_early_and_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Samples wait for the flush unless they grow past a bound, and are reduced in chunks:
    neither changes a value."""

    def activations(name: str) -> Any:
        torch.manual_seed(0)
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with runlint.record(model, opt, tmp_path / name, stats_every=2) as rec:
            for _ in range(9):
                loss = nn.functional.cross_entropy(
                    model(torch.randn(24, 8) * 3), torch.randint(0, 4, (24,))
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
        return runlint.load_run(tmp_path / name).activations

    batched = activations("batched")
    monkeypatch.setattr(Activations, "PENDING_VALUES", 100)  # reduce at every step
    monkeypatch.setattr(Activations, "CHUNK_VALUES", 700)  # two samples per chunk
    early = activations("early")
    assert len(batched) == 5 * len(ACTS)
    pd.testing.assert_frame_equal(early, batched, rtol=1e-6)


def test_begin_batch_and_update_meta(tmp_path: Path) -> None:
    """Integrations mark batches that do not go through the model's own forward, add meta."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with runlint.record(model, opt, tmp_path / "r", stats_every=1) as rec:
        for _ in range(3):
            x = torch.randn(6, 8)
            rec.begin_batch((x, torch.zeros(6)))
            loss = model[2](model[1](model[0](x))).pow(2).mean()  # inner modules only
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
        rec.update_meta(loss_logging_interval=5)
    run = runlint.load_run(tmp_path / "r")
    assert run.meta["batch_size"] == 6 and run.meta["loss_logging_interval"] == 5
    assert run.meta["provenance"]["loss_logging_interval"] == "given"
    assert sorted(set(run.activations["step"])) == [0, 1, 2]
