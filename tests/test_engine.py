"""The engine: discovery, selection, options from config, skipped and crashing rules, --jobs."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from helpers_rules import SECTIONS
from test_loader_synth import write_run

from runlint.check import engine
from runlint.check.config import Config, ConfigError
from runlint.check.engine import Catalog, Checker, RunResult
from runlint.check.rule import Finding, Rule, Severity, option
from runlint.run import Run


class LossHigh(Rule):
    __doc__ = "Fires when the last loss is above a threshold." + SECTIONS

    code = "RL901"
    name = "loss-high"
    severity = Severity.WARNING
    requires = ("steps.loss",)

    @dataclass
    class Options:
        limit: float = option(1.0, "threshold")
        columns: tuple[str, ...] = option(("loss",), "columns")
        mode: Literal["last", "mean"] = option("last", "which value")
        window: int = option(5, "window")

    def check(self, run: Run) -> Iterator[Finding]:
        last = float(run.steps["loss"].iloc[-1])
        if last > self.options.limit:
            yield self.finding(run, f"last loss {last:.2f} > {self.options.limit}", "train longer")


class Crashes(Rule):
    __doc__ = "Always raises." + SECTIONS

    code = "RL902"
    name = "crashes"
    requires = ("steps.loss",)

    def check(self, run: Run) -> Iterator[Finding]:
        yield from ()
        raise ZeroDivisionError("boom")


class NeedsMeta(Rule):
    __doc__ = "Needs metadata the runs lack." + SECTIONS

    code = "RL450"
    name = "needs-meta"
    requires = ("meta.num_classes", "meta.label_smoothing", "steps.loss")

    def check(self, run: Run) -> Iterator[Finding]:
        yield self.finding(
            run, f"num_classes={run.meta['num_classes']}", "none", severity=Severity.INFO
        )


CATALOG = Catalog((NeedsMeta, LossHigh, Crashes))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("engine")
    flat = np.full(50, 2.0)
    return [
        write_run(root / "high", steps=50, loss=flat),
        write_run(root / "low", steps=50, loss=flat / 10),
        write_run(root / "nan", steps=50, loss=np.full(50, np.nan)),
    ]


def test_discovery_imports_rule_modules_and_skips_private_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "rlpkg_discovery"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_helpers.py").write_text("raise RuntimeError('private modules are not imported')\n")
    (pkg / "broken.py").write_text("import nonexistent_module_xyz\n")
    (pkg / "rl990_sample.py").write_text(
        textwrap.dedent(
            '''
            from runlint.check.rule import Rule

            class Base(Rule, abstract=True):
                """No code: a helper base, not a rule."""

            class Sample(Base):
                """A sample.

                ## Why it matters
                x

                ## Known problems
                x

                ## Fix
                x

                ## Seed
                x
                """
                code = "RL990"
                name = "sample"

                def check(self, run):
                    yield from ()
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    catalog = engine.discover("rlpkg_discovery")
    assert [r.code for r in catalog.rules] == ["RL990"]
    assert len(catalog.errors) == 1 and "broken" in catalog.errors[0]
    assert "nonexistent_module_xyz" in catalog.errors[0]


def test_shipped_catalog_has_rl103_and_well_formed_rules() -> None:
    catalog = engine.discover()
    assert "RL103" in catalog.codes
    for rule in catalog.rules:
        assert rule.code.startswith("RL") and len(rule.code) == 5
        assert rule.name == rule.name.lower() and " " not in rule.name
        assert engine.rule_summary(rule)


@pytest.mark.parametrize(
    ("select", "ignore", "expected"),
    [
        (None, [], ["RL450", "RL901", "RL902"]),
        (["ALL"], ["RL9"], ["RL450"]),
        (["RL9"], [], ["RL901", "RL902"]),
        (["RL90"], ["crashes"], ["RL901"]),
        (["RL902"], ["RL9"], ["RL902"]),  # the more specific selector wins
        (["loss-high", "RL4"], [], ["RL450", "RL901"]),
        (["rl901"], [], ["RL901"]),
    ],
)
def test_select_and_ignore(
    select: list[str] | None, ignore: list[str], expected: list[str]
) -> None:
    assert [r.code for r in engine.select_rules(CATALOG, select, ignore)] == expected


def test_unknown_selector_is_a_config_error_with_hint() -> None:
    with pytest.raises(ConfigError, match="did you mean 'loss-high'"):
        engine.configure(CATALOG, Config(), ["loss-hihg"])


def test_options_are_built_and_type_checked() -> None:
    config = Config(rules={"RL901": {"limit": 3, "columns": ["loss", "x"], "severity": "error"}})
    rules = engine.configure(CATALOG, config, ["RL901"])
    assert rules[0].options.limit == 3.0 and isinstance(rules[0].options.limit, float)
    assert rules[0].options.columns == ("loss", "x") and rules[0].severity is Severity.ERROR


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"limt": 1}, "no option 'limt'; did you mean 'limit'"),
        ({"limit": "high"}, "expected float"),
        ({"limit": True}, "expected float"),
        ({"window": 2.5}, "expected int"),
        ({"columns": "loss"}, "expected tuple"),
        ({"mode": "median"}, "expected one of"),
        ({"severity": "fatal"}, "must be one of info, warning, error"),
    ],
)
def test_bad_rule_table_is_a_config_error(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        engine.configure(CATALOG, Config(rules={"RL901": table}))


def test_unknown_rule_table_suggests_a_code() -> None:
    with pytest.raises(ConfigError, match="did you mean 'RL901'"):
        engine.configure(CATALOG, Config(rules={"RL911": {}}))


def test_one_pass_reports_findings_skips_and_crashes(runs: list[Path]) -> None:
    rules = engine.configure(CATALOG, Config())
    results = list(Checker(rules).check(runs))
    high, low, nan = results
    assert [f.code for f in high.findings] == ["RL901"] and "2.00" in high.findings[0].message
    assert low.findings == []
    for result in results:
        assert result.status == "ok"
        assert [s.code for s in result.skipped][:1] == ["RL450"]
    assert "meta.label_smoothing not recorded" in high.skipped[0].reasons
    crash = high.rule_errors[0]
    assert crash.code == "RL902" and "ZeroDivisionError: boom" in crash.error
    assert "test_engine.py" in crash.error
    # an all-NaN loss makes every loss rule skip, with the reason
    assert {s.code for s in nan.skipped} == {"RL450", "RL901", "RL902"}
    assert "steps.loss is NaN at every row" in nan.skipped[1].reasons
    assert engine.exit_code(results, Severity.WARNING, exit_zero=False) == 2


def test_meta_overrides_fill_missing_metadata_only(tmp_path: Path) -> None:
    bare = write_run(tmp_path / "bare", steps=10, write_meta=False)
    given = write_run(tmp_path / "given", steps=10, meta={"num_classes": 7})
    rules = [NeedsMeta()]
    checker = Checker(rules, meta={"num_classes": 4, "label_smoothing": 0.1})
    out = {r.name: r for r in checker.check([bare, given])}
    assert out["bare"].findings[0].message == "num_classes=4"
    assert len(out["bare"].notes) == 1 and "no meta.json" in out["bare"].notes[0]
    assert out["given"].notes == []
    assert out["given"].findings[0].message == "num_classes=7"


def test_unreadable_run_does_not_stop_the_others(runs: list[Path], tmp_path: Path) -> None:
    bad = write_run(tmp_path / "bad", steps=10)
    (bad / "steps-r0.parquet").write_bytes(b"nope")
    results = list(Checker([LossHigh()]).check([bad, runs[0]]))
    assert results[0].status == "error" and "steps-r0.parquet" in (results[0].error or "")
    assert results[1].findings and results[1].status == "ok"


def test_incomplete_run_is_checked_and_marked(tmp_path: Path) -> None:
    live = write_run(tmp_path / "live", steps=30, parts=True, complete=False, loss=np.full(30, 5.0))
    (result,) = Checker([LossHigh()]).check([live])
    assert result.status == "incomplete" and result.findings


def test_jobs_give_the_same_results_in_order(runs: list[Path]) -> None:
    rules = engine.configure(CATALOG, Config(), ["RL9"])
    one = list(Checker(rules, curve=True).check(runs, jobs=1))
    two = list(Checker(rules, curve=True).check(runs, jobs=2))

    def key(results: list[RunResult]) -> list[object]:
        return [
            (r.path, r.status, [f.to_dict() for f in r.findings], r.skipped, r.rule_errors, r.curve)
            for r in results
        ]

    assert repr(key(one)) == repr(key(two))


def test_exit_codes() -> None:
    def result(*severities: Severity) -> RunResult:
        findings = [Finding("RL901", "x", s, "m", "f") for s in severities]
        return RunResult(path="r", findings=findings)

    assert engine.exit_code([result()], Severity.WARNING, False) == 0
    assert engine.exit_code([result(Severity.INFO)], Severity.WARNING, False) == 0
    assert engine.exit_code([result(Severity.INFO)], Severity.INFO, False) == 1
    assert engine.exit_code([result(Severity.WARNING)], Severity.WARNING, False) == 1
    assert engine.exit_code([result(Severity.WARNING)], Severity.ERROR, False) == 0
    assert engine.exit_code([result(Severity.ERROR)], Severity.ERROR, True) == 0
    assert engine.exit_code([RunResult(path="r", status="error")], Severity.ERROR, True) == 2


def test_loss_curve_marks_non_finite_bins(tmp_path: Path) -> None:
    loss = np.linspace(3, 1, 200)
    loss[150:] = np.inf
    run_dir = write_run(tmp_path / "r", steps=200, loss=loss)
    from runlint.run import load_run

    curve, span = engine.loss_curve(load_run(run_dir), points=20)
    assert curve is not None and span is not None
    assert all(np.isfinite(curve[:15])) and all(np.isnan(curve[15:]))
    assert curve[0] > curve[14] and span.points == 200
    assert (span.first, span.first_step, span.last_step, span.peak) == (3.0, 0, 149, 3.0)


def test_loss_curve_leaves_out_steps_that_did_not_log_the_loss(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = write_run(tmp_path / "sparse", steps=200)
    table = pq.read_table(run / "steps-r0.parquet")
    loss = pa.array(table.column("loss").to_numpy(), mask=np.arange(200) % 10 != 0)
    table = table.set_column(table.column_names.index("loss"), "loss", loss)
    pq.write_table(table, run / "steps-r0.parquet")
    curve, span = engine.loss_curve(engine.load_run(run))
    assert curve is not None and all(np.isfinite(curve)) and len(curve) == 20
    assert span is not None and span.points == 20 and span.last_step == 190
