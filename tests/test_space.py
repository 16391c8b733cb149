"""The space of drawn runs (fixtures/space): draws are deterministic per seed, every fault class
is reachable and labelled, a tiny draw trains and records a run runlint loads, and a drawn set's
manifest is what bench/detection.py --space reads."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

from space import (  # noqa: E402
    FAMILIES,
    FAULTS,
    Draw,
    assign,
    by_name,
    faulty_draw,
    generate,
    healthy_draw,
)
from space.axes import MODALITY, estimate_seconds  # noqa: E402
from space.verify import trained  # noqa: E402

CODE = re.compile(r"^RL\d{3}$")


def _load(path: Path, name: str) -> Any:
    """A script (fixtures/make_space.py, bench/detection.py) imported as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_healthy_draws_are_deterministic_per_seed() -> None:
    for i in range(20):
        assert healthy_draw(0, i).to_dict() == healthy_draw(0, i).to_dict()
    assert [healthy_draw(0, i).to_dict() for i in range(5)] != [
        healthy_draw(1000, i).to_dict() for i in range(5)
    ]
    assert healthy_draw(0, 3, 0).to_dict() != healthy_draw(0, 3, 1).to_dict()  # a redraw differs


def test_faulty_draws_are_deterministic_per_seed() -> None:
    for i in range(12):
        base, d, text = faulty_draw(7, i)
        base2, d2, text2 = faulty_draw(7, i)
        assert (base.to_dict(), d.to_dict(), text) == (base2.to_dict(), d2.to_dict(), text2)
        assert assign(7, i) == assign(7, i)


def test_draw_round_trips_through_json() -> None:
    d = faulty_draw(0, 4)[1]
    assert Draw.from_dict(json.loads(json.dumps(d.to_dict()))) == d


def test_every_fault_class_is_labelled_with_a_family_and_valid_codes() -> None:
    assert len({f.name for f in FAULTS}) == len(FAULTS)
    for f in FAULTS:
        assert f.family in FAMILIES, f.name
        assert f.why and len(f.levels) >= 1, f.name
        for level in f.levels:
            codes = f.expect_for(level)
            assert all(CODE.match(c) for c in codes), (f.name, codes)
            if codes:  # the family's own rule is among the codes that must fire
                assert any(c.startswith(f.family) for c in codes), (f.name, codes)
    assert {f.family for f in FAULTS} == set(FAMILIES)


def test_every_fault_class_is_reachable_from_a_set_of_150() -> None:
    for seed in (0, 1000):
        reached = {assign(seed, i)[0].name for i in range(150)}
        assert reached == {f.name for f in FAULTS}
        per_family = [sum(assign(seed, i)[0].family == fam for i in range(150)) for fam in FAMILIES]
        assert max(per_family) - min(per_family) <= 1  # families get equal shares


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_every_level_of_a_fault_class_can_be_drawn(fault: Any) -> None:
    for level in fault.levels:
        base, d, text = faulty_draw(0, 1, 0, (fault, level))
        assert base.healthy and not base.fault and not d.healthy, fault.name
        assert (d.fault_class, d.severity_level) == (fault.name, level)
        assert text
        assert d != base  # the fault changed something
        for key, allowed in fault.constraints.items():  # the base honours the constraints
            value = {
                "arch": base.arch,
                "task": base.task,
                "optimizer": base.optimizer,
                "schedule": base.schedule,
                "act": base.model["act"],
            }.get(key)
            if value is not None and isinstance(allowed, tuple):
                assert value in allowed, (fault.name, key, value)
        assert estimate_seconds(d) < 20, (fault.name, level, estimate_seconds(d))


def test_healthy_space_covers_its_axes() -> None:
    draws = [healthy_draw(0, i) for i in range(300)]
    assert {d.arch for d in draws} == set(MODALITY)
    assert {d.task for d in draws} == {
        "multiclass",
        "binary",
        "multilabel",
        "imbalanced",
        "regression",
    }
    assert {d.optimizer for d in draws} == {
        "sgd",
        "momentum",
        "nesterov",
        "adam",
        "adamw",
        "rmsprop",
        "adagrad",
    }
    assert {d.model["act"] for d in draws} == {
        "relu",
        "gelu",
        "tanh",
        "sigmoid",
        "leaky_relu",
        "silu",
    }
    assert {d.schedule for d in draws} == {
        "constant",
        "step",
        "cosine",
        "warmup",
        "onecycle",
        "plateau",
    }
    assert {d.precision for d in draws} == {"fp32", "bf16"}
    constant = sum(d.schedule == "constant" for d in draws) / len(draws)
    assert 0.4 < constant < 0.6
    partial = sum(len(d.meta_keys) < (3 if d.task != "regression" else 2) for d in draws)
    assert 0.2 < partial / len(draws) < 0.4
    assert all(8 <= d.batch_size <= 1024 and 1 <= d.epochs <= 100 for d in draws)
    assert {d.arch for d in draws if d.precision == "bf16"}.isdisjoint({"lstm", "gru"})


def test_health_check_judges_by_outcome() -> None:
    good = {
        "nonfinite_at": None,
        "initial_loss": 2.3,
        "final_loss": 0.5,
        "val_acc": 0.8,
        "baseline_acc": 0.1,
        "train_eval_acc": 0.85,
        "val_r2": None,
        "train_eval_r2": None,
    }
    assert trained(good, "multiclass") == (True, "")
    assert not trained({**good, "final_loss": 2.2}, "multiclass")[0]  # the loss did not fall
    assert not trained({**good, "val_acc": 0.3}, "multiclass")[0]  # not clearly above chance
    assert not trained({**good, "train_eval_acc": 1.0, "val_acc": 0.6}, "multiclass")[0]
    assert not trained({**good, "nonfinite_at": 17}, "multiclass")[0]
    reg = {**good, "val_acc": None, "val_r2": 0.7, "train_eval_r2": 0.75}
    assert trained(reg, "regression")[0]
    assert not trained({**reg, "val_r2": 0.1}, "regression")[0]


def test_a_setting_out_of_range_is_a_fault_only_where_the_run_ends_worse() -> None:
    """lr ×10 on a draw whose lr was low lands in a good range: no fault, the draw is redrawn."""
    worse = by_name("lr-too-high").symptom
    assert worse is not None
    d = healthy_draw(0, 0, 0)
    d.task = "multiclass"
    base = {"val_acc": 0.97, "val_r2": None}
    assert not worse({"nonfinite_at": None, "val_acc": 0.975, "base": base}, d)[0]
    assert not worse({"nonfinite_at": None, "val_acc": 0.955, "base": base}, d)[0]  # noise
    assert worse({"nonfinite_at": None, "val_acc": 0.90, "base": base}, d)[0]
    assert not worse({"nonfinite_at": 12, "val_acc": 0.10, "base": base}, d)[0]  # the NaN class
    d.task = "regression"
    base = {"val_acc": None, "val_r2": 0.80}
    assert worse({"nonfinite_at": None, "val_r2": 0.70, "base": base}, d)[0]
    assert not worse({"nonfinite_at": None, "val_r2": 0.79, "base": base}, d)[0]


def _tiny(d: Draw) -> Draw:
    """The draw shrunk to a second of training."""
    d = dataclasses.replace(d, data=dict(d.data), model=dict(d.model), opt=dict(d.opt))
    d.data.update(n_train=96, n_val=64)
    d.epochs, d.batch_size = 2, 16
    if d.arch == "mlp" and d.model["widths"]:
        d.model["widths"] = [min(32, w) for w in d.model["widths"]]
    return d


@pytest.fixture(scope="module")
def torch_ok() -> None:
    pytest.importorskip("torch")


def test_tiny_draw_trains_and_records_a_loadable_run(tmp_path: Path, torch_ok: None) -> None:
    from space.train import train

    from runlint.run import load_run

    d = _tiny(healthy_draw(0, 0, 0))
    d.arch, d.modality, d.task, d.loss = "mlp", "vector", "multiclass", "cross_entropy"
    d.data.update(classes=3, spiral=True, dim=2, noise=0.2)
    d.model.update(widths=[16], batchnorm=False)
    d.precision, d.meta_keys = "fp32", ["num_classes", "batch_size", "loss"]
    outcome = train(d, tmp_path / "run")
    assert outcome["steps"] == 2 * (96 // 16)
    run = load_run(tmp_path / "run")
    assert len(run.steps) == outcome["steps"]
    assert run.meta["num_classes"] == 3 and run.meta["batch_size"] == 16


def test_tiny_faulty_draw_trains(tmp_path: Path, torch_ok: None) -> None:
    from space.train import train

    from runlint.run import load_run

    _, d, _ = faulty_draw(0, 0, 0, (by_name("l2-wired-to-nothing"), "1e-3"))
    d = _tiny(d)
    train(d, tmp_path / "run")
    steps = load_run(tmp_path / "run").steps
    assert (steps["reg_loss"] == 0).all()  # the L2 term filters nothing


def test_drawn_set_manifest_is_what_the_bench_reads(
    tmp_path: Path, torch_ok: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make_space.generate on draws shrunk to tiny runs: the manifest's format, and the bench's
    --space tables on it (checked in-process)."""
    real_h = generate.healthy_draw

    def tiny_healthy(seed: int, index: int, attempt: int = 0) -> Draw:
        d = _tiny(real_h(seed, index, attempt))
        d.arch, d.modality, d.task, d.loss = "mlp", "vector", "regression", "mse"
        d.data.update(dim=4, spiral=False, modes=1, spread=1.0, label_noise=0.1)
        d.model.update(widths=[32], batchnorm=False, act="relu", dropout=0.0)
        d.optimizer, d.opt, d.schedule, d.sched = (
            "adam",
            {"lr": 3e-3, "betas": [0.9, 0.999], "eps": 1e-8},
            "constant",
            {},
        )
        d.precision, d.clip, d.l2 = "fp32", None, 0.0
        d.epochs = 8
        return d

    def tiny_faulty(seed: int, index: int, attempt: int = 0, fault: Any = None) -> Any:
        base = tiny_healthy(seed, index, attempt)
        d = dataclasses.replace(
            base,
            opt=dict(base.opt),
            healthy=False,
            fault_class="lr-too-low",
            severity_level="/1000",
        )
        d.opt["lr"] /= 1000
        return base, d, "lr ÷1000"

    monkeypatch.setattr(generate, "healthy_draw", tiny_healthy)
    monkeypatch.setattr(generate, "faulty_draw", tiny_faulty)
    make_space = _load(ROOT / "fixtures" / "make_space.py", "make_space")
    out = tmp_path / "set"
    manifest = make_space.generate(5, 1, 1, out, jobs=1, quiet=True)
    doc = json.loads((out / "manifest.json").read_text())
    assert doc == json.loads(json.dumps(manifest))
    assert doc["seed"] == 5 and doc["counts"]["healthy"] + doc["counts"]["faulty"] >= 1
    keys = {
        "name",
        "path",
        "healthy",
        "expect",
        "family",
        "fault",
        "description",
        "fault_class",
        "severity_level",
        "draw",
        "seed",
    }
    for r in doc["runs"]:
        assert keys <= set(r), r.keys()
        assert (out / r["path"]).is_dir()
    faulty = [r for r in doc["runs"] if not r["healthy"]]
    assert faulty and len(faulty) < len(doc["runs"]), doc["discarded"]
    assert all(r["family"] == "RL2" and r["expect"] == ["RL201"] for r in faulty)
    assert not (out / ".bases").exists()

    detection = _load(ROOT / "bench" / "detection.py", "detection")
    runs = detection.load_space([out])
    assert len(runs) == len(doc["runs"])
    totals = detection.space_report(runs, ["RL201"], show_runs=True)
    assert totals["healthy_error"] == (0, sum(r.healthy for r in runs))


def test_wilson_interval() -> None:
    detection = _load(ROOT / "bench" / "detection.py", "detection")
    lo, hi = detection.wilson(0, 150)
    assert lo == 0.0 and 0.024 < hi < 0.026  # 0/150: up to 2.5 %
    lo, hi = detection.wilson(135, 150)
    assert 0.84 < lo < 0.85 and 0.93 < hi < 0.94


@pytest.mark.parametrize(
    "optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"]
)
@pytest.mark.parametrize(
    "schedule", ["constant", "step", "cosine", "warmup", "onecycle", "plateau"]
)
def test_every_optimizer_takes_every_schedule(
    optimizer: str, schedule: str, torch_ok: None
) -> None:
    import torch
    from space.train import _optimizer, _scheduler

    d = healthy_draw(0, 0)
    d = dataclasses.replace(
        d,
        optimizer=optimizer,
        schedule=schedule,
        opt={"lr": 0.01, "momentum": 0.9, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
    )
    d.sched = {
        "step": {"drops": 2, "gamma": 0.5},
        "cosine": {"floor": 0.0},
        "warmup": {"fraction": 0.1, "then": "cosine"},
        "plateau": {"factor": 0.5, "patience": 2},
    }.get(schedule, {})
    opt = _optimizer(d, [torch.nn.Parameter(torch.zeros(3))])
    _scheduler(d, opt)
