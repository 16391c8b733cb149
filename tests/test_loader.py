"""The loader reads real recorded runs, lazily, and turns every kind of damage into RunError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_loader_synth import record_tiny, write_run

import runlint
from runlint.run import RunError, find_runs, load_run
from runlint.run.views import _arrow_unique_view, _mean_by
from runlint.schema import SchemaError

VIEWS = ("steps", "groups", "epochs", "params", "activations", "histograms", "weights")


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_tiny(tmp_path_factory.mktemp("loader") / "tiny")


def test_recorded_run_has_every_view(recorded: Path) -> None:
    run = load_run(recorded)
    assert run.complete and run.source == "runlint"
    assert run.steps.index.name == "step" and len(run.steps) == 24
    assert {"loss", "lr", "momentum"} <= set(run.steps.columns)
    assert run.epochs.index.name == "epoch" and len(run.epochs) == 3
    assert {"step", "param", "grad_norm", "update_ratio"} <= set(run.params.columns)
    assert run.has("steps.loss") and run.has("meta.num_classes") and run.has("params")
    assert not run.has("steps.grad_norm") and not run.has("meta.label_smoothing")
    for typo in ("steps.nothing", "meta.nothing", "bogus"):  # a name the schema lacks
        with pytest.raises(SchemaError, match=r"no column|unknown"):
            run.has(typo)


def test_tables_are_read_only_when_touched(recorded: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(recorded, tmp_path / "run"))
    run = load_run(copy)
    (copy / "histograms-r0.parquet").write_bytes(b"PAR1" + bytes(64) + b"PAR1")  # after load
    assert len(run.steps) == 24
    with pytest.raises(RunError, match="histograms"):
        _ = run.histograms


def test_unique_keys_skip_the_groupby_but_match_it() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "step": np.repeat(np.arange(5), 3),
            "param": np.tile(["b", "a", "c"], 5),
            "rank": 0,
            "value": rng.random(15),
            "count": np.arange(15),
            "flag": np.tile([True, False, True], 5),
        }
    )
    twice = pd.concat([frame, frame.assign(rank=1)])  # two equal ranks: the groupby path
    for index in (True, False):
        fast = _mean_by(frame, ["step", "param"], index=index)
        slow = _mean_by(twice, ["step", "param"], index=index)
        pd.testing.assert_frame_equal(fast, slow)
    assert list(_mean_by(frame, ["step", "param"], index=False)["param"][:3]) == ["a", "b", "c"]


def test_ranks_are_averaged(tmp_path: Path) -> None:
    root = write_run(tmp_path / "r", steps=20, ranks=2)
    run = load_run(root)
    assert len(run.steps) == 20 and "rank" in run.raw["steps"].columns
    assert len(run.params) == 2 * 3  # 2 probe steps × 3 layers, ranks merged


def test_run_still_being_written_is_read_from_its_parts(tmp_path: Path) -> None:
    root = write_run(tmp_path / "live", steps=40, parts=True, complete=False)
    run = load_run(root)
    assert not run.complete and len(run.steps) == 40


def test_run_without_metadata_loads_with_empty_meta(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "r", steps=10, write_meta=False))
    assert run.meta == {} and len(run.steps) == 10


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "meta.json").write_text("{not json"), "meta.json is not valid JSON"),
        (lambda r: (r / "meta.json").write_text("[1, 2]"), "not a JSON object"),
        (lambda r: (r / "steps-r0.parquet").write_bytes(b"PAR1garbage"), "steps-r0.parquet"),
        (
            lambda r: (r / "params-r0.parquet").write_bytes(
                (r / "params-r0.parquet").read_bytes()[:100]
            ),
            "params-r0.parquet is not a readable Parquet file",
        ),
        (
            lambda r: (r / "meta.json").write_text(
                json.dumps({"format": "runlint-run", "version": 99})
            ),
            "newer than this runlint",
        ),
    ],
)
def test_damage_is_a_one_line_run_error(tmp_path: Path, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    root = write_run(tmp_path / "r", steps=10)
    damage(root)
    with pytest.raises(RunError, match=message) as info:
        load_run(root)
    assert "\n" not in str(info.value) and str(root) in str(info.value)


def test_unrelated_folder_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    (tmp_path / "notes" / "data.csv").write_text("a,b\n1,2\n")
    assert list(find_runs(tmp_path)) == []
    with pytest.raises(RunError, match="not a runlint run directory"):
        load_run(tmp_path / "notes")
    with pytest.raises(RunError, match="no such file"):
        load_run(tmp_path / "missing")


def test_find_runs_recurses_and_stops_at_runs(tmp_path: Path) -> None:
    a = write_run(tmp_path / "x" / "a", steps=5)
    b = write_run(tmp_path / "y" / "z" / "b", steps=5)
    (tmp_path / ".hidden").mkdir()
    write_run(tmp_path / ".hidden" / "c", steps=5)
    assert list(find_runs(tmp_path)) == [a, b]


def test_all_nan_column_loads_and_counts_as_missing(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "r", steps=10, loss=np.full(10, np.nan)))
    assert "loss" in run.steps.columns and not run.has("steps.loss")


_damage = st.tuples(
    st.sampled_from(["truncate", "flip", "zero", "garbage"]),
    st.integers(0, 10**6),
    st.integers(1, 64),
    st.binary(min_size=1, max_size=64),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    damages=st.lists(_damage, min_size=1, max_size=3),
    which=st.lists(st.integers(0, 100), min_size=3, max_size=3),
)
def test_damaged_files_load_or_raise_run_error(
    recorded: Path,
    tmp_path_factory: pytest.TempPathFactory,
    damages,
    which,  # type: ignore[no-untyped-def]
) -> None:
    root = Path(shutil.copytree(recorded, tmp_path_factory.mktemp("fuzz") / "run"))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for (kind, offset, length, junk), pick in zip(damages, which, strict=False):
        target = files[pick % len(files)]
        data = bytearray(target.read_bytes())
        at = offset % max(len(data), 1)
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip":
            for i in range(at, min(at + length, len(data))):
                data[i] ^= 0xFF
        elif kind == "zero":
            data[at : at + length] = bytes(min(length, len(data) - at))
        else:
            data[at : at + len(junk)] = junk
        target.write_bytes(bytes(data))
    try:
        run = runlint.load_run(root)
    except RunError as exc:
        assert "\n" not in str(exc)
        return
    for view in VIEWS:
        try:
            frame = getattr(run, view)
            assert isinstance(frame, pd.DataFrame)
            run.has(view)
        except RunError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=50, deadline=None)
@given(
    steps=st.lists(st.integers(0, 30), min_size=1, max_size=30, unique=True),
    names=st.lists(st.sampled_from(["w", "b", "a.w", "z"]), min_size=1, max_size=4, unique=True),
    seed=st.integers(0, 2**16),
)
def test_fast_path_matches_groupby_on_any_order(
    steps: list[int], names: list[str], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = [(s, n) for s in steps for n in names]
    rng.shuffle(rows)
    frame = pd.DataFrame(rows, columns=["step", "param"]).assign(
        rank=0, value=rng.random(len(rows)), count=np.arange(len(rows))
    )
    twice = pd.concat([frame, frame.assign(rank=1)])
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    for index in (True, False):
        slow = _mean_by(twice, ["step", "param"], index=index)
        pd.testing.assert_frame_equal(_mean_by(frame, ["step", "param"], index=index), slow)
        pd.testing.assert_frame_equal(
            _arrow_unique_view(arrow, ["step", "param"], index=index), slow
        )
    assert _arrow_unique_view(pa.Table.from_pandas(twice), ["step", "param"], index=True) is None
    single = frame.drop_duplicates("step")
    slow = _mean_by(pd.concat([single, single.assign(rank=1)]), ["step"])
    pd.testing.assert_frame_equal(_mean_by(single, ["step"]), slow)
    single_arrow = pa.Table.from_pandas(single, preserve_index=False)
    pd.testing.assert_frame_equal(_arrow_unique_view(single_arrow, ["step"], index=True), slow)
