"""Discovery streams: nested runs of every kind are found, what is passed over is said with a
reason, ``--exclude`` leaves folders out, runs are checked while the walk goes on (a streaming
report holds no run once it is written), and a
progress line goes to stderr only when it is a terminal."""

from __future__ import annotations

import gc
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import ROOT, invoke
from test_importers import _event, _file, _state

from runlint import cli
from runlint.check import engine

CORPUS = ROOT / "fixtures" / "corpus"
NAN_RUN = CORPUS / "rl103-lr-x1000-nan"
LOSSES = [1.0 / (s + 1) if s < 20 else float("nan") for s in range(30)]


def events(tag: str, values: list[float]) -> bytes:
    return _file([_event(s, tag, v) for s, v in enumerate(values)])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs inside runs: a TensorBoard run and a runlint run in a Trainer output folder, a
    runlint run in a Lightning version_0/, a TensorBoard run with an add_scalars folder."""
    root = tmp_path_factory.mktemp("tree") / "logs"
    hf = root / "hf-out"
    (hf / "checkpoint-30").mkdir(parents=True)
    history = [{"loss": v, "step": s} for s, v in enumerate(LOSSES)]
    (hf / "checkpoint-30" / "trainer_state.json").write_text(_state(history))
    (hf / "runs" / "Dec01_host").mkdir(parents=True)
    (hf / "runs" / "Dec01_host" / "events.out.tfevents.1.host").write_bytes(
        events("train/loss", LOSSES)
    )
    shutil.copytree(NAN_RUN, hf / "recorded")
    pl = root / "pl" / "version_0"
    pl.mkdir(parents=True)
    rows = "".join(f"{s},0,{v}\n" for s, v in enumerate(LOSSES))
    (pl / "metrics.csv").write_text("step,epoch,train_loss\n" + rows)
    shutil.copytree(NAN_RUN, pl / "runlint")
    tb = root / "tb"
    (tb / "val_loss").mkdir(parents=True)
    (tb / "events.out.tfevents.1.h").write_bytes(events("loss", LOSSES))
    (tb / "val_loss" / "events.out.tfevents.2.h").write_bytes(events("loss", [1.0] * 30))
    shutil.copytree(NAN_RUN, root / "old" / "r")
    shutil.copytree(NAN_RUN, root / ".hidden" / "r")
    return root


def check_json(cwd: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = invoke("check", *args, "--select", "RL103", "-f", "json")
    finally:
        os.chdir(old)
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_nested_runs_of_every_kind_are_found_and_passing_over_is_explained(tree: Path) -> None:
    code, doc, err = check_json(tree.parent, "logs", "--exclude", "ol?", "-v")
    assert code == 1 and err == ""
    runs = {Path(r["path"]).relative_to("logs").as_posix() for r in doc["runs"]}
    assert runs == {
        "hf-out",
        "hf-out/runs/Dec01_host",  # TensorBoard inside a Trainer output folder
        "hf-out/recorded",  # a runlint run inside it
        "pl/version_0",
        "pl/version_0/runlint",  # a runlint run inside a Lightning version_0/
        "tb",
    }
    assert len(doc["findings"]) == 6 and {f["code"] for f in doc["findings"]} == {"RL103"}
    passed = {
        Path(p["path"]).relative_to("logs").as_posix(): p["reason"]
        for p in doc["summary"]["passed_over"]
    }
    assert passed == {
        "old": "excluded by 'ol?'",
        ".hidden": "a hidden folder",
        "hf-out/checkpoint-30": "a checkpoint of the Trainer output folder above it",
        "tb/val_loss": "an add_scalars folder of the TensorBoard run above it",
    }
    # a glob with "/" matches the path relative to the checked path; the config's exclude too
    _, doc, _ = check_json(tree.parent, "logs", "--exclude", "pl/*,hf-out")
    assert {Path(r["path"]).name for r in doc["runs"]} == {"tb", "r"}
    config = tree.parent / "runlint.toml"
    config.write_text('[tool.runlint]\nexclude = ["old", "hf-*"]\n')
    try:
        _, doc, _ = check_json(tree.parent, "logs", "--config", str(config))
    finally:
        config.unlink()
    assert {Path(r["path"]).name for r in doc["runs"]} == {"version_0", "runlint", "tb"}


def test_runs_are_checked_while_the_walk_goes_on(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[int] = [0]
    at_first_check: list[int] = []
    real_walk, real_check = engine.walk, engine.Checker.check_path

    def walk(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for event in real_walk(*args, **kwargs):
            walked[0] += isinstance(event, engine.Found)
            yield event

    def check_path(self: engine.Checker, path: Path) -> engine.RunResult:
        at_first_check.append(walked[0])
        return real_check(self, path)

    monkeypatch.setattr(engine, "walk", walk)
    monkeypatch.setattr(engine.Checker, "check_path", check_path)
    code, doc, _ = check_json(tree.parent, "logs")
    assert code == 1 and len(doc["runs"]) == 7
    assert at_first_check[0] == 1, "the first run is checked before the walk found the second"


@pytest.mark.parametrize(("fmt", "kept"), [("text", 1), ("github", 1), ("json", 7)])
def test_a_streaming_report_keeps_no_run_once_written(
    tree: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, kept: int
) -> None:
    """Memory bounded by one run: at the summary a streaming format holds at most the last run's
    result (the counts come from the tally); json, one document at the end, holds them all."""
    from runlint import report

    alive: list[int] = []
    real = report.make_reporter

    def make_reporter(*args: Any, **kwargs: Any) -> report.Reporter:
        reporter = real(*args, **kwargs)
        finish = reporter.finish

        def counted(rep: report.Report) -> None:
            gc.collect()
            alive.append(sum(isinstance(o, engine.RunResult) for o in gc.get_objects()))
            finish(rep)

        reporter.finish = counted  # type: ignore[method-assign]
        return reporter

    monkeypatch.setattr(report, "make_reporter", make_reporter)
    result = invoke("check", str(tree), "--select", "RL103", "-f", fmt, "-j", "1")
    assert result.exit_code == 1
    assert len(alive) == 1 and alive[0] <= kept if kept == 1 else alive == [kept]
    if fmt == "text":
        assert "7 findings (7 errors, 0 warnings, 0 info) in 7 runs" in result.stdout


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal_only(tree: Path) -> None:
    args = ["check", str(tree), "--select", "RL103", "-f", "json", "-o", os.devnull]
    assert invoke(*args).stderr == ""  # stderr is not a terminal: nothing
    err = Terminal()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = cli.invoke(args)
    assert code == 1
    shown = err.getvalue()
    assert re.search(r"checked \d+/\d+ runs \(\d+\.\d runs/s\)", shown), shown
    assert shown.endswith("\r\x1b[K"), "the line is cleared at the end"
    err = Terminal()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        cli.invoke([*args, "--quiet"])
    assert err.getvalue() == ""
