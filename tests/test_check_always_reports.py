"""A check always ends in a report: a worker that dies is reported against its run and the
other runs are checked; non-UTF-8 names work in every format; garbage in the metadata is one
"unreadable metadata" line for its run, never a rule crash."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import invoke
from helpers_rules import SECTIONS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_loader_synth import write_run

from runlint.check import engine
from runlint.check.config import Config
from runlint.check.engine import Catalog, Checker
from runlint.check.rule import Finding, Rule
from runlint.run import Run
from runlint.schema.meta import META

NAN_LOSS = np.r_[np.linspace(2.3, 1.0, 30), np.full(10, np.nan)]


class KillsItsProcess(Rule):
    __doc__ = "Kills the process checking a run named victim (as the OOM killer would)." + SECTIONS

    code = "RL980"
    name = "kills-its-process"
    requires = ("steps.loss",)

    def check(self, run: Run) -> Iterator[Finding]:
        if run.path.name.startswith("victim"):
            os.kill(os.getpid(), signal.SIGKILL)
        yield self.finding(run, "checked", "nothing")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("pool")
    names = ["a", "victim-1", "b", "c", "d", "victim-2", "e"]
    return [write_run(root / name, steps=40, loss=NAN_LOSS) for name in names]


def test_a_killed_worker_is_reported_against_its_run_and_the_others_are_checked(
    runs: list[Path],
) -> None:
    rules = engine.configure(Catalog((KillsItsProcess,)), Config())
    results = list(Checker(rules).check(iter(runs), jobs=2))
    assert [Path(r.path).name for r in results] == [p.name for p in runs]  # in order, all
    for result in results:
        if result.path.rsplit("/", 1)[-1].startswith("victim"):
            assert result.status == "error"
            assert "killed by SIGKILL (out of memory: the OOM killer?)" in (result.error or "")
        else:
            assert result.status == "ok" and [f.message for f in result.findings] == ["checked"]
    assert engine.exit_code(results, engine.Severity.WARNING, False) == 2


def test_a_killed_worker_ends_in_a_full_report_with_exit_2(
    runs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = engine.discover()
    monkeypatch.setattr(
        engine, "discover", lambda: Catalog((*catalog.rules, KillsItsProcess), catalog.errors)
    )
    result = invoke("check", *map(str, runs), "-j", "2", "--select", "RL103,RL980", "-f", "json")
    assert result.exit_code == 2 and "Traceback" not in result.output
    doc = json.loads(result.stdout)
    assert [r["status"] for r in doc["runs"]] == ["ok", "error", "ok", "ok", "ok", "error", "ok"]
    codes = [f["code"] for f in doc["findings"]]
    assert codes.count("RL103") == 5 and codes.count("RL980") == 5


@pytest.mark.parametrize("fmt", ["text", "github", "json", "sarif", "junit"])
def test_a_non_utf8_run_name_is_checked_and_reported_in_every_format(
    tmp_path: Path, fmt: str
) -> None:
    write_run(tmp_path / "logs" / "tmp", steps=40, loss=NAN_LOSS)
    os.rename(
        os.fsencode(tmp_path / "logs" / "tmp"), os.fsencode(tmp_path / "logs") + b"/r\xff\xfe"
    )
    target = tmp_path / "out"
    result = invoke(
        "check", str(tmp_path / "logs"), "--select", "RL103", "-f", fmt, "-o", str(target)
    )
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    text = target.read_bytes().decode("utf-8")
    shown = "r\\xff\\xfe"  # the bytes, visible
    assert (json.dumps(shown)[1:-1] if fmt in ("json", "sarif") else shown) in text
    assert "RL103" in text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats()
    | st.text(st.characters(codec="utf-8"), max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)
#: Objects with the keys the schema's lists and objects hold, garbage as their values.
ITEM_KEYS = [
    "name",
    "shape",
    "numel",
    "dtype",
    "module_type",
    "role",
    "trainable",
    "in_optimizer",
    "group",
    "fan_in",
    "init_std",
    "init_mean",
    "type",
    "activation",
    "class",
    "defaults",
    "groups",
    "lr",
    "betas",
    "eps",
    "momentum",
    "weight_decay",
    "nesterov",
]
ITEMS = st.dictionaries(st.sampled_from(ITEM_KEYS), JSON_VALUES, max_size=5)
GARBAGE = (
    JSON_VALUES
    | st.lists(ITEMS, max_size=3)
    | ITEMS
    | st.fixed_dictionaries(
        {},
        optional={
            "class": JSON_VALUES,
            "defaults": ITEMS | JSON_VALUES,
            "groups": st.lists(ITEMS, max_size=2) | JSON_VALUES,
        },
    )
)


@pytest.fixture(scope="module")
def all_rules_checker() -> Checker:
    return Checker(engine.configure(engine.discover(), Config()), curve=True)


def _with_meta(run: Path, meta: dict[str, object]) -> None:
    doc = json.loads((run / "meta.json").read_text())
    doc["meta"] = {"num_classes": 10, "batch_size": 64, **meta}
    (run / "meta.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "meta",
    [
        {"params": [[1, 2], "x"], "optimizer": [1, 2]},
        {"optimizer": {"class": "SGD", "defaults": [1], "groups": [1, {"lr": "fast"}]}},
        {"params": [{"name": "w", "shape": "big"}], "modules": "relu"},
        {"modules": [{}, {"init_std": []}]},
        {"params": [{"name": "w"}, {"name": "w"}], "frozen": 3, "provenance": [1]},
    ],
)
def test_garbage_in_known_metadata_is_one_line_not_a_rule_crash(
    tmp_path: Path, all_rules_checker: Checker, meta: dict[str, object]
) -> None:
    run = write_run(tmp_path / "run", steps=60)
    _with_meta(run, meta)
    result = all_rules_checker.check_path(run)
    assert result.rule_errors == [] and result.status == "ok"
    (note,) = [n for n in result.notes if "unreadable metadata" in n]
    for key in meta:
        if key not in ("frozen", "provenance") or key in note:
            assert f"meta.{key}" in note
    assert "\n" not in note


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.dictionaries(st.sampled_from([*META, "name", "class"]), GARBAGE, max_size=4))
def test_no_metadata_makes_a_rule_crash(
    fuzz_run: Path, all_rules_checker: Checker, meta: dict[str, object]
) -> None:
    _with_meta(fuzz_run, meta)
    result = all_rules_checker.check_path(fuzz_run)
    assert result.rule_errors == [], result.rule_errors
    assert result.status == "ok", result.error
    assert sum("unreadable metadata" in n for n in result.notes) <= 1


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("fuzz") / "run", steps=60)
