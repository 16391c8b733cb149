"""``runlint check --watch``: a real training process writes runs while the command follows them
in another process; each finding is printed once, as it appears, and the command exits when the
runs have closed, with ``runlint check``'s exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import helpers_training as training
import pytest
import torch
from torch import nn

import runlint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Two runs of one process: "healthy" from the start, "diverging" (SGD at lr 200: NaN within
# steps) appearing a second later, while the watcher already runs (a new run is picked up).
WRITER = textwrap.dedent(
    """
    import sys, time, torch
    from torch import nn
    import runlint

    torch.set_num_threads(1)
    root = sys.argv[1]
    torch.manual_seed(0)
    x = torch.randn(256, 20); y = x[:, :4].argmax(1)

    def setup(lr):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        meta = {"num_classes": 4, "batch_size": 32}
        return model, opt, meta

    def step(model, opt, rec, i):
        j = (i * 32) % 256
        loss = nn.functional.cross_entropy(model(x[j:j + 32]), y[j:j + 32])
        opt.zero_grad(); loss.backward(); opt.step(); rec.log(loss=loss)
        if i % 8 == 7:
            rec.log_epoch(train_loss=loss.detach())

    m1, o1, meta = setup(0.05)
    with runlint.record(m1, o1, f"{root}/healthy", meta=meta, flush_every=20) as r1:
        for i in range(60):
            step(m1, o1, r1, i); time.sleep(0.02)
        m2, o2, meta = setup(200.0)
        with runlint.record(m2, o2, f"{root}/diverging", meta=meta, flush_every=20) as r2:
            for i in range(60, 200):
                step(m1, o1, r1, i); step(m2, o2, r2, i - 60); time.sleep(0.02)
    """
)


def _default_sigint() -> None:
    """In the child: Ctrl-C as in a terminal (a pytest-xdist worker ignores SIGINT, and an
    ignored signal is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _runlint(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "runlint", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
        **kwargs,  # type: ignore[call-overload]
    )


def test_watch_follows_runs_being_written_and_exits_when_they_close(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    script = tmp_path / "train.py"
    script.write_text(WRITER)
    watcher = _runlint("check", "--watch", str(root), "--format", "json")
    writer = subprocess.Popen([sys.executable, str(script), str(root)])
    try:
        assert writer.wait(timeout=120) == 0
        out, err = watcher.communicate(timeout=120)
    finally:
        for proc in (writer, watcher):
            if proc.poll() is None:
                proc.kill()
    assert watcher.returncode == 1, err  # the diverging run's errors: findings at --fail-on
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "waiting" and kinds[-1] == "summary"
    runs = {Path(e["run"]).name: e for e in events if e["event"] == "run"}
    assert set(runs) == {"healthy", "diverging"}
    assert not runs["diverging"]["closed"]  # seen while it was written
    closed = {Path(e["run"]).name for e in events if e["event"] == "closed"}
    assert closed == {"healthy", "diverging"}
    new = [e for e in events if e["event"] == "new"]
    assert Counter((e["run"], e["key"]) for e in new).most_common(1)[0][1] == 1  # once each
    nonfinite = [e for e in new if e["finding"]["code"] == "RL103"]
    assert len(nonfinite) == 1 and Path(nonfinite[0]["run"]).name == "diverging"
    assert nonfinite[0]["step"] < 140  # found before the run closed (140 steps)
    assert not [
        e for e in new if Path(e["run"]).name == "healthy" and e["finding"]["severity"] == "error"
    ]
    summary = events[-1]
    assert summary["exit_code"] == 1 and summary["runs_closed"] == 2


@pytest.fixture(scope="module")
def closed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished diverging run: ``--watch`` checks it once with the whole catalog and exits."""
    x, y = training.data(128)
    model = training.mlp(nn.ReLU)
    opt = torch.optim.SGD(model.parameters(), lr=200.0)
    logdir = tmp_path_factory.mktemp("watch") / "run"
    with runlint.record(model, opt, logdir, meta={"num_classes": 4, "batch_size": 32}) as rec:
        for step in range(40):
            training.train_step(rec, model, opt, x, y, step)
    return logdir


def test_watch_prints_text_and_github_and_honours_the_exit_flags(closed_run: Path) -> None:
    text = _runlint("check", "--watch", str(closed_run))
    out, _ = text.communicate(timeout=60)
    assert text.returncode == 1
    assert "RL103 error run (non-finite-loss)" in out and "fix:" in out
    assert out.count("RL103 error") == 1 and "closed after 40 steps" in out
    github = _runlint("check", "--watch", str(closed_run), "--format", "github", "--exit-zero")
    out, _ = github.communicate(timeout=60)
    assert github.returncode == 0
    assert "::error " in out and "title=RL103 non-finite-loss" in out


def test_watch_refuses_a_format_it_cannot_stream(closed_run: Path) -> None:
    proc = _runlint("check", "--watch", str(closed_run), "--format", "sarif")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--watch prints text, json, github" in err


def test_watch_ends_on_ctrl_c_with_what_it_knows(tmp_path: Path) -> None:
    proc = _runlint("check", "--watch", str(tmp_path / "not-yet"), "--format", "json")
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the watcher is up and waiting for the path to appear
    assert json.loads(first)["event"] == "waiting" and time.monotonic() < deadline
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["interrupted", "summary"]
    assert proc.returncode == 0 and events[-1]["runs"] == 0
