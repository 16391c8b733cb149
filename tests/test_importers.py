"""Importers: the TFRecord/protobuf reader, the CSV and trainer_state readers, names, detection.

Event files are written by TensorBoard's own record writer and protobuf classes (the reader
itself never imports them); damaged inputs are fuzzed with hypothesis.
"""

from __future__ import annotations

import io
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2, tensor_pb2, types_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

import runlint
from runlint.run import RunError, find_runs, importers, load_run
from runlint.run.importers import lightning_csv
from runlint.run.importers.hparams import parse_yaml
from runlint.run.importers.names import classify
from runlint.run.importers.tfrecord import masked_crc32c, read_scalars

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- writing event files with TensorBoard's own protobufs -----------------------------------------
def _event(step: int, tag: str, value: float, form: str = "simple") -> bytes:
    event = event_pb2.Event(step=step, wall_time=1_700_000_000.0 + step)
    if form == "simple":
        event.summary.value.add(tag=tag, simple_value=value)
    else:
        dtype = types_pb2.DT_FLOAT if form == "float" else types_pb2.DT_DOUBLE
        tensor = tensor_pb2.TensorProto(dtype=dtype)
        (tensor.float_val if form == "float" else tensor.double_val).append(value)
        event.summary.value.add(tag=tag, tensor=tensor)
    return event.SerializeToString()


def _file(events: list[bytes]) -> bytes:
    out = io.BytesIO()
    writer = RecordWriter(out)
    writer.write(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())
    for data in events:
        writer.write(data)
    return out.getvalue()


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


SCALARS = st.lists(
    st.tuples(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.text(min_size=1, max_size=20),
        st.floats(width=32),
        st.sampled_from(["simple", "float", "double"]),
    ),
    max_size=30,
)


@FUZZ
@given(SCALARS)
def test_event_reader_reads_back_every_scalar_tensorboard_wrote(scalars: list) -> None:
    data = _file([_event(step, tag, value, form) for step, tag, value, form in scalars])
    out = read_scalars(data)
    assert out.tags == [tag for _, tag, _, _ in scalars]
    assert out.steps == [step for step, _, _, _ in scalars]
    assert all(_same(a, v) for a, (_, _, v, _) in zip(out.values, scalars, strict=True))
    assert not out.truncated and out.damaged == 0


def test_masked_crc_matches_tensorboard() -> None:
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

    for data in (b"", b"a", b"runlint" * 37, bytes(range(256))):
        assert masked_crc32c(data) == reference(data)


TEN = _file([_event(s, "train/loss", 1.0 / (s + 1)) for s in range(10)])


@FUZZ
@given(st.integers(min_value=0, max_value=len(TEN)))
def test_event_reader_stops_cleanly_at_a_cut_record(cut: int) -> None:
    out = read_scalars(TEN[:cut])
    assert out.steps == list(range(len(out.steps)))  # a prefix of what was written
    assert out.truncated == (cut not in _record_ends(TEN))
    assert out.damaged == 0


def _record_ends(data: bytes) -> set[int]:
    ends, pos = {0}, 0
    while pos < len(data):
        pos += 16 + int.from_bytes(data[pos : pos + 8], "little")
        ends.add(pos)
    return ends


@FUZZ
@given(st.integers(min_value=0, max_value=len(TEN) - 1), st.integers(min_value=1, max_value=255))
def test_event_reader_drops_damaged_records_and_never_crashes(pos: int, flip: int) -> None:
    damaged = bytearray(TEN)
    damaged[pos] ^= flip
    out = read_scalars(bytes(damaged))
    written = {s: struct.unpack("<f", struct.pack("<f", 1.0 / (s + 1)))[0] for s in range(10)}
    assert all(written.get(s) == v for s, v in zip(out.steps, out.values, strict=True))
    first_scalar_record = min(_record_ends(TEN) - {0})
    if pos >= first_scalar_record:  # a damaged scalar record is dropped, or reading stops
        assert len(out.steps) < 10
        assert out.damaged + (out.stopped_at is not None) + out.truncated >= 1


@FUZZ
@given(st.binary(max_size=300))
def test_event_reader_survives_garbage(data: bytes) -> None:
    out = read_scalars(data)
    assert out.damaged >= 0


def test_event_reader_skips_non_scalar_tensors() -> None:
    text = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"hello"])
    vector = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.0, 2.0])
    vector.tensor_shape.dim.add(size=2)
    content = tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_content=b"\0" * 7 + b"@")
    events = []
    for tag, tensor in (("text", text), ("vector", vector), ("content", content)):
        event = event_pb2.Event(step=5)
        event.summary.value.add(tag=tag, tensor=tensor)
        events.append(event.SerializeToString())
    out = read_scalars(_file(events))
    assert out.tags == ["content"] and out.values == [2.0] and out.steps == [5]


def test_tensorboard_folder_loads_as_a_run(tmp_path: Path) -> None:
    events = []
    for s in range(20):
        events.append(_event(s, "train/loss", 2.3 - 0.05 * s))
        events.append(_event(s, "lr-SGD", 0.1))
        if s % 10 == 9:
            events.append(_event(s, "val/acc", 0.5))
            events.append(_event(s, "custom thing", 7.0))
    (tmp_path / "events.out.tfevents.1700000000.host.1.0").write_bytes(_file(events)[:-3])
    run = load_run(tmp_path)
    assert run.source == "tensorboard" and not run.complete
    assert run.steps["loss"].iloc[0] == pytest.approx(2.3)
    assert len(run.steps) == 20 and list(run.steps["lr"]) == pytest.approx([0.1] * 20)
    assert list(run.epochs["val_acc"]) == [0.5, 0.5][: len(run.epochs)]
    assert "custom_thing" in run.steps.columns
    assert run.meta["import"]["truncated"] is True


def test_a_resumed_run_keeps_the_last_value_of_a_step(tmp_path: Path) -> None:
    first = _file([_event(s, "loss", 1.0) for s in range(5)])
    second = _file([_event(s, "loss", 2.0) for s in range(3, 8)])
    (tmp_path / "events.out.tfevents.100.h.1.0").write_bytes(first)
    (tmp_path / "events.out.tfevents.200.h.1.0").write_bytes(second)
    run = load_run(tmp_path)
    assert list(run.steps["loss"]) == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]


def test_event_files_without_scalars_are_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "events.out.tfevents.1.h").write_bytes(_file([]))
    with pytest.raises(RunError, match="no scalars"):
        load_run(tmp_path)


# -- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("loss", "steps.loss"),
        ("train_loss", "steps.loss"),
        ("train/loss", "steps.loss"),
        ("training_loss", "steps.loss"),
        ("train_loss_step", "steps.loss"),
        ("Loss/train", "steps.loss"),
        ("train_loss_epoch", "epochs.train_loss"),
        ("lr-SGD", "groups.lr"),
        ("lr-Adam/pg2", "groups.lr"),
        ("lr-SGD-momentum", "groups.momentum"),
        ("train/learning_rate", "groups.lr"),
        ("learning_rate", "groups.lr"),
        ("grad_norm", "steps.grad_norm"),
        ("train/grad_norm", "steps.grad_norm"),
        ("eval_loss", "epochs.val_loss"),
        ("val_loss", "epochs.val_loss"),
        ("valid/loss", "epochs.val_loss"),
        ("val/loss", "epochs.val_loss"),
        ("eval_accuracy", "epochs.val_acc"),
        ("val_acc", "epochs.val_acc"),
        ("val/acc", "epochs.val_acc"),
        ("train_acc_epoch", "epochs.train_acc"),
        ("train_acc_step", "steps.train_acc"),
        ("eval_runtime", "epochs.eval_runtime"),
        ("My Metric!", "steps.my_metric"),
        ("epoch", "skip.epoch"),
    ],
)
def test_common_names_map_onto_the_run_signals(name: str, where: str) -> None:
    signal = classify(name)
    assert f"{signal.table}.{signal.column}" == where
    if name == "lr-Adam/pg2":
        assert signal.group == 1


# -- Lightning metrics.csv ---------------------------------------------------------------------
CSV = (
    "epoch,lr-SGD,step,train_acc,train_loss_epoch,train_loss_step,val_acc,val_loss\n"
    ",0.1,0,,,,,\n0,,0,,,2.30,,\n0,,1,,,2.10,,\n0,,1,,,,0.40,1.90\n0,,1,0.35,2.2,,,\n"
    ",0.05,2,,,,,\n1,,2,,,nan,,\n1,,3,,,inf,,\n1,,3,,,,0.50,1.50\n1,,3,0.45,1.8,,,\n"
)


def test_lightning_csv_is_read_wide_and_sparse(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text(CSV)
    (tmp_path / "hparams.yaml").write_text("lr: 0.1\nnum_classes: 10\nbatch_size: 64\n")
    run = load_run(tmp_path)
    assert run.source == "lightning" and run.complete
    loss = run.steps["loss"]
    assert list(loss[:2]) == [2.30, 2.10] and math.isnan(loss[2]) and math.isinf(loss[3])
    assert list(run.steps["lr"].dropna()) == [0.1, 0.05]
    assert list(run.epochs.index) == [0, 1]
    assert list(run.epochs["val_loss"]) == [1.90, 1.50]
    assert list(run.epochs["train_acc"]) == [0.35, 0.45]
    assert run.meta["num_classes"] == 10 and run.meta["batch_size"] == 64
    assert run.meta["provenance"]["num_classes"] == "hparams.yaml num_classes"


@FUZZ
@given(st.integers(min_value=0, max_value=len(CSV)))
def test_a_half_written_metrics_csv_reads_up_to_its_last_full_line(cut: int) -> None:
    long, truncated, _damaged = lightning_csv.read_metrics(CSV[:cut])
    assert truncated == (cut > 0 and CSV[cut - 1] != "\n")
    full, _, _ = lightning_csv.read_metrics(CSV)
    assert len(long) <= len(full)


@FUZZ
@given(st.text(max_size=200))
def test_any_metrics_csv_gives_a_run_or_a_one_line_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "metrics.csv").write_text(text, encoding="utf-8", errors="replace")
        try:
            run = load_run(folder)
        except RunError as exc:
            assert "\n" not in str(exc)
        else:
            assert run.source == "lightning"


# -- hparams.yaml ------------------------------------------------------------------------------
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec="ascii", categories=["L", "N"]), max_size=12),
)
KEY = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@FUZZ
@given(st.dictionaries(KEY, st.one_of(SCALAR, st.dictionaries(KEY, SCALAR, max_size=4))))
def test_the_yaml_subset_reads_what_pyyaml_writes(tree: dict) -> None:
    text = yaml.safe_dump(tree)
    assert parse_yaml(text) == yaml.safe_load(text) or tree == {}


def test_yaml_objects_it_cannot_read_are_left_out() -> None:
    text = "lr: 0.01\nmodel: !!python/object:foo.Bar\n  x: 1\nlayers:\n- 1\n- 2\nname: 'mlp'\n"
    assert parse_yaml(text) == {"lr": 0.01, "layers": [1, 2], "name": "mlp"}


# -- Hugging Face trainer_state.json -----------------------------------------------------------
def _state(history: list[dict], **extra: object) -> str:
    return json.dumps({"log_history": history, "train_batch_size": 8, "logging_steps": 5, **extra})


def test_trainer_state_is_read_from_the_latest_checkpoint(tmp_path: Path) -> None:
    for step in (5, 10):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        history = [{"loss": 2.0 - 0.1 * s, "learning_rate": 1e-3, "step": s} for s in (5, 10)]
        (folder / "trainer_state.json").write_text(_state(history[: step // 5]))
    (tmp_path / "checkpoint-10" / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["BertForSequenceClassification"],
                "id2label": {str(i): f"L{i}" for i in range(3)},
            }
        )
    )
    (tmp_path / "training_args.bin").write_bytes(b"\x80not a pickle to open")
    run = load_run(tmp_path)
    assert run.source == "hf"
    assert list(run.steps.index) == [4, 9] and list(run.steps["loss"]) == [1.5, 1.0]
    assert run.meta["num_classes"] == 3 and run.meta["loss"] == "cross_entropy"
    assert run.meta["first_loss_is_average"] is True
    assert run.meta["loss_logging_interval"] == 5
    assert run.meta["batch_size"] == 8


def test_logging_first_step_makes_the_first_loss_a_real_one(tmp_path: Path) -> None:
    history = [
        {"loss": 1.1, "step": 1},
        {"loss": 0.9, "step": 5},
        {"eval_loss": 0.8, "eval_accuracy": 0.6, "eval_runtime": 0.1, "step": 5, "epoch": 1.0},
        {"train_runtime": 3.0, "train_loss": 0.95, "total_flos": 1.0, "step": 5},
    ]
    (tmp_path / "trainer_state.json").write_text(_state(history))
    run = load_run(tmp_path)
    assert run.meta["first_loss_is_average"] is False and run.complete
    assert list(run.steps["loss"]) == [1.1, 0.9] and run.steps.index[0] == 0
    assert run.epochs["val_loss"].tolist() == [0.8] and run.epochs["val_acc"].tolist() == [0.6]
    assert run.meta["summary"]["train_loss"] == 0.95


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "not valid JSON"), ("[]", "not a JSON object"), ("{}", "no log_history")],
)
def test_a_broken_trainer_state_is_a_one_line_error(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "trainer_state.json").write_text(text)
    with pytest.raises(RunError, match=message) as info:
        load_run(tmp_path)
    assert "\n" not in str(info.value)


# -- detection and discovery -------------------------------------------------------------------
def test_discovery_finds_each_kind_and_never_claims_a_runlint_run(tmp_path: Path) -> None:
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / "events.out.tfevents.1.h").write_bytes(TEN)
    (tmp_path / "pl" / "version_0").mkdir(parents=True)
    (tmp_path / "pl" / "version_0" / "metrics.csv").write_text(CSV)
    (tmp_path / "hf" / "checkpoint-3").mkdir(parents=True)
    (tmp_path / "hf" / "checkpoint-3" / "trainer_state.json").write_text(
        _state([{"loss": 1.0, "step": 3}])
    )
    (tmp_path / "hf" / "runs" / "x").mkdir(parents=True)
    (tmp_path / "hf" / "runs" / "x" / "events.out.tfevents.1.h").write_bytes(TEN)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "meta.json").write_text("{}")
    (tmp_path / "mine" / "events.out.tfevents.1.h").write_bytes(TEN)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hi")
    found = {p.relative_to(tmp_path).as_posix(): importers.kind(p) for p in find_runs(tmp_path)}
    assert found == {  # the TensorBoard run inside the Trainer output folder is a run too
        "hf": "hf",
        "hf/runs/x": "tensorboard",
        "mine": None,
        "pl/version_0": "lightning",
        "tb": "tensorboard",
    }


def test_checking_imported_logs_never_imports_torch(tmp_path: Path) -> None:
    (tmp_path / "tb").mkdir()
    (tmp_path / "tb" / "events.out.tfevents.1.h").write_bytes(TEN)
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "metrics.csv").write_text(CSV)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "trainer_state.json").write_text(_state([{"loss": 1.0, "step": 5}]))
    code = (
        "import sys, runlint\n"
        f"root = __import__('pathlib').Path({str(tmp_path)!r})\n"
        "runs = [runlint.load_run(p) for p in runlint.find_runs(root)]\n"
        "assert len(runs) == 3, runs\n"
        "heavy = {'torch', 'tensorboard', 'lightning', 'transformers', 'yaml'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert runlint.load_run(tmp_path / "hf").source == "hf"
