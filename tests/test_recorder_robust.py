"""The recorder never breaks training: failing probes, unwritable directories and a training
loop that raises all leave the loop running (or raising its own error) and the hooks removed."""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import runlint
from runlint.recorder import kernels
from runlint.schema.layout import compact_name, parse_compact, parse_part, part_name


def _model() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))


def _train(logdir: Path, steps: int = 12, **options: object) -> tuple[nn.Module, list[str]]:
    """Train; return the model and the runlint warnings raised."""
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, logdir, stats_every=2, hist_every=4, **options) as rec:
            for _ in range(steps):
                loss = nn.functional.cross_entropy(model(torch.randn(8, 8)), torch.zeros(8).long())
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
    return model, [str(w.message) for w in caught if "runlint" in str(w.message)]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_failing_probe_warns_once_and_the_rest_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> torch.Tensor:
        raise RuntimeError("probe bug")

    monkeypatch.setattr(kernels, "activation_stats", broken)
    _, messages = _train(tmp_path / "r")
    assert len(messages) == 1 and "activations" in messages[0] and "probe bug" in messages[0]
    run = runlint.load_run(tmp_path / "r")
    assert len(run.steps) == 12 and run.steps["loss"].notna().all()
    assert sorted(set(run.params["step"])) == list(range(0, 12, 2))
    assert run.activations.empty
    assert "activations" in run.meta["probes_off"]
    assert not run.histograms.empty  # gradient histograms still on


def test_failing_norm_probe_keeps_step_counting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = kernels.norms

    def flaky(tensors: list[torch.Tensor]) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] > 3:
            raise ValueError("norm bug")
        return real(tensors)

    monkeypatch.setattr(kernels, "norms", flaky)
    _, messages = _train(tmp_path / "r")
    assert len(messages) == 1 and "params" in messages[0]
    run = runlint.load_run(tmp_path / "r")
    assert list(run.steps.index) == list(range(12)) and run.meta["steps"] == 12
    assert list(run.groups["step"]) == list(range(12))
    assert not run.activations.empty


def test_unwritable_logdir_warns_once_and_training_completes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    model, messages = _train(blocker / "run")
    assert len(messages) == 1 and "cannot write logs" in messages[0]
    assert blocker.read_text() == "not a directory"
    assert _hooks(model) == 0


def test_logdir_lost_mid_run_warns_once(tmp_path: Path) -> None:
    """The parts directory is replaced by a file after the first flush: writes fail."""
    logdir = tmp_path / "r"
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, logdir, flush_every=3, background=False) as rec:
            for step in range(12):
                if step == 5:
                    shutil.rmtree(logdir / "parts")
                    (logdir / "parts").write_text("in the way")
                loss = model(torch.randn(8, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss)
    messages = [str(w.message) for w in caught if "runlint" in str(w.message)]
    assert len(messages) == 1 and "cannot write logs" in messages[0]
    assert rec.step == 12


def test_hooks_removed_when_training_raises(tmp_path: Path) -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyError, match="boom"), runlint.record(model, opt, tmp_path / "r") as rec:
        for step in range(5):
            loss = model(torch.randn(4, 8)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
            if step == 3:
                raise KeyError("boom")
    assert _hooks(model) == 0
    assert not opt._optimizer_step_pre_hooks and not opt._optimizer_step_post_hooks
    run = runlint.load_run(tmp_path / "r")
    assert run.complete and list(run.steps.index) == [0, 1, 2, 3]


def test_non_numeric_scalar_warns_once_and_is_dropped(tmp_path: Path) -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, tmp_path / "r") as rec:
            for _ in range(3):
                loss = model(torch.randn(4, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss, tag="warmup", vec=torch.zeros(3))
    messages = [str(w.message) for w in caught if "runlint" in str(w.message)]
    assert len(messages) == 2  # one per bad key, not per step
    run = runlint.load_run(tmp_path / "r")
    assert "tag" not in run.steps.columns and run.steps["loss"].notna().all()


def test_tensor_changed_in_place_after_log_loses_only_that_value(tmp_path: Path) -> None:
    """Logged tensors are kept by reference (no copy kernel per step) with their version
    counter: an accumulator changed in place loses one value, with one warning, then is
    copied; a plain loss keeps every value."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    running = torch.zeros(())
    expected_running, expected_loss = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, tmp_path / "r", flush_every=4) as rec:
            for _ in range(10):
                loss = model(torch.randn(4, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                running += loss.detach()
                rec.log(loss=loss, running=running)
                expected_running.append(float(running))
                expected_loss.append(float(loss))
    messages = [str(w.message) for w in caught if "changed in place" in str(w.message)]
    assert len(messages) == 1
    steps = runlint.load_run(tmp_path / "r").steps
    np.testing.assert_allclose(steps["loss"], expected_loss, rtol=1e-6)
    assert steps["running"].isna().tolist() == [True] + [False] * 9
    np.testing.assert_allclose(steps["running"][1:], expected_running[1:], rtol=1e-6)


def test_tensors_logged_under_inference_mode(tmp_path: Path) -> None:
    """Inference tensors have no version counter to check: they are copied, and recorded."""
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, tmp_path / "r") as rec:
            for _ in range(3):
                loss = model(torch.randn(4, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.inference_mode():
                    val = model(torch.randn(4, 8)).pow(2).mean()
                    rec.log_epoch(val_loss=val)
                expected.append(float(val))
    assert [str(w.message) for w in caught if "runlint" in str(w.message)] == []
    run = runlint.load_run(tmp_path / "r")
    np.testing.assert_allclose(run.epochs["val_loss"], expected, rtol=1e-6)


@given(
    table=st.sampled_from(["steps", "groups", "params", "activations", "epochs"]),
    rank=st.integers(0, 4096),
    seq=st.integers(0, 999_999),
)
def test_part_and_compact_names_round_trip(table: str, rank: int, seq: int) -> None:
    assert parse_part(part_name(table, rank, seq)) == (table, rank, seq)
    assert parse_compact(compact_name(table, rank)) == (table, rank)
    assert parse_part(compact_name(table, rank)) is None
    assert parse_compact(f".{part_name(table, rank, seq)}.123.tmp") is None


@settings(max_examples=15, deadline=None)
@given(
    values=st.lists(
        st.dictionaries(
            st.sampled_from(["loss", "acc", "reg"]),
            st.one_of(
                st.floats(allow_nan=True, allow_infinity=True, width=32),
                st.integers(-(2**20), 2**20),
            ),
            min_size=1,
        ),
        min_size=1,
        max_size=6,
    ),
    as_tensor=st.booleans(),
)
def test_logged_scalars_round_trip(values: list[dict[str, float]], as_tensor: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _check_round_trip(Path(tmp) / "r", values, as_tensor)


def _check_round_trip(logdir: Path, values: list[dict[str, float]], as_tensor: bool) -> None:
    model = nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    with runlint.record(model, opt, logdir, flush_every=2, background=False) as rec:
        for row in values:
            model(torch.ones(1, 2)).sum().backward()
            opt.step()
            logged = {k: torch.tensor(float(v)) if as_tensor else v for k, v in row.items()}
            rec.log(**logged)
    raw = runlint.load_run(logdir).raw["steps"].sort_values("step")
    assert list(raw["step"]) == list(range(len(values)))
    for (_, got), row in zip(raw.iterrows(), values, strict=True):
        for key, v in row.items():
            expected = float(torch.tensor(float(v))) if as_tensor else float(v)
            assert got[key] == pytest.approx(expected, nan_ok=True)


# -- a bad value costs only itself (issue 16) -----------------------------------------------
def _window(logdir: Path, bad: dict[str, object], steps: int = 100) -> list[str]:
    """``steps`` steps in one flush window; ``bad`` is logged with the loss at step 50 only.
    The runlint warnings raised."""
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, logdir, flush_every=1000, background=False) as rec:
            for step in range(steps):
                loss = model(torch.randn(8, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss, **(bad if step == 50 else {}), other=float(step))
    return [str(w.message) for w in caught if "runlint" in str(w.message)]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(torch.zeros((), device="meta"), id="meta-tensor"),
        pytest.param(torch.zeros(1, device="meta"), id="meta-tensor-1d"),
        pytest.param("warmup", id="string"),
        pytest.param([1.0, 2.0], id="list"),
        pytest.param(torch.ones(3), id="vector"),
        pytest.param(object(), id="object"),
    ],
)
def test_a_value_that_cannot_be_recorded_is_missing_and_the_rest_is_kept(
    tmp_path: Path, value: object
) -> None:
    messages = _window(tmp_path / "r", {"x": value})
    assert len(messages) == 1, messages
    assert messages[0].startswith(("runlint: cannot record x=", "runlint: cannot copy x "))
    assert messages[0].endswith("recorded as missing")
    run = runlint.load_run(tmp_path / "r")
    assert list(run.steps.index) == list(range(100))  # the window's other 99 steps are kept
    assert run.steps["loss"].notna().all() and list(run.steps["other"]) == list(range(100))
    assert not run.logged("steps", "x").any()  # missing, not NaN
    assert run.meta["probes_off"] == {}  # the flush and the log probe are still on


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(float("nan"), np.nan, id="nan"),
        pytest.param(float("-inf"), -np.inf, id="inf"),
        pytest.param(np.float32("nan"), np.nan, id="numpy-nan"),
        pytest.param(torch.tensor(float("inf")), np.inf, id="tensor-inf"),
        pytest.param(torch.ones(1, requires_grad=True) * 3, 3.0, id="requires-grad"),
        pytest.param(torch.tensor([2.5], requires_grad=True), 2.5, id="requires-grad-leaf"),
    ],
)
def test_non_finite_and_requires_grad_values_are_recorded_as_they_are(
    tmp_path: Path, value: object, expected: float
) -> None:
    assert _window(tmp_path / "r", {"x": value}) == []
    run = runlint.load_run(tmp_path / "r")
    logged = run.logged("steps", "x")
    assert list(np.flatnonzero(logged)) == [50]  # a value, NaN included: not missing
    np.testing.assert_equal(run.steps["x"].iloc[50], expected)
    assert run.steps["loss"].notna().all()


@pytest.mark.usefixtures("one_torch_thread")
def test_ten_thousand_distinct_keys_keep_the_first_thousand(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runlint.record(model, opt, tmp_path / "r", background=False) as rec:
            for step in range(100):
                loss = model(torch.randn(8, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss, **{f"k{step}_{j}": float(j) for j in range(100)})
    messages = [str(w.message) for w in caught if "runlint" in str(w.message)]
    assert len(messages) == 1 and "more than 1000 distinct names" in messages[0]
    assert "max_keys=" in messages[0]
    run = runlint.load_run(tmp_path / "r")
    assert list(run.steps.index) == list(range(100)) and run.steps["loss"].notna().all()
    kept = [c for c in run.raw["steps"].columns if c.startswith("k")]
    assert len(kept) == 999  # "loss" is the first of the 1000 names
    assert run.steps["k9_98"].iloc[9] == 98.0 and "k9_99" not in run.steps.columns


@pytest.mark.usefixtures("one_torch_thread")
def test_loss_logged_every_tenth_step_is_missing_elsewhere_not_nan(tmp_path: Path) -> None:
    """``rec.log`` called on every 10th step only: the other steps have no loss, which is not
    a non-finite loss (RL103) nor a loss that blew up (RL202)."""
    from runlint.check import engine
    from runlint.check.config import Config

    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x[:, :4].argmax(1)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with runlint.record(model, opt, tmp_path / "r", meta={"num_classes": 4}) as rec:
        for step in range(300):
            batch = slice(step % 8 * 32, step % 8 * 32 + 32)
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % 10 == 0:
                rec.log(loss=loss)
    run = runlint.load_run(tmp_path / "r")
    assert list(np.flatnonzero(run.logged("steps", "loss"))) == list(range(0, 300, 10))
    rules = engine.configure(engine.discover(), Config(), ["RL103", "RL202"])
    result = engine.Checker(rules).check_path(tmp_path / "r")
    assert result.status == "ok" and result.error is None
    assert [f.code for f in result.findings] == [], [f.message for f in result.findings]
    assert [s.code for s in result.skipped] == []  # both rules judged the run
