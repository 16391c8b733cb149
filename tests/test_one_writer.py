"""One run, one writer: a run directory is locked by the recording that owns it, so a second
writer (another process, or the same one) is refused, or sent to a sibling directory, or
resumes a run that is no longer being written — never mixed into it.

The writers are real processes, forked from a process that imported torch once (``Zygote``:
importing torch per process would cost seconds each on shared cores).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import runlint
from runlint.recorder import recorder as recorder_module
from runlint.recorder.lock import LockHeld, RunLock
from runlint.recorder.rundir import RunExistsError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the in-process trainings

#: A process that imports torch and runlint and records a warm-up run once, then forks a
#: child per request to run a program: writers start in milliseconds rather than seconds.
ZYGOTE = textwrap.dedent(
    """
    import json, os, sys, tempfile, time, traceback, warnings
    from pathlib import Path
    import torch, runlint, pyarrow.parquet
    from torch import nn
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with runlint.record(model, opt, Path(tmp) / "warm-up", flush_every=1) as rec:
            for _ in range(3):
                model(torch.randn(2, 4)).sum().backward()
                opt.step()
                rec.log(loss=1.0)
        runlint.load_run(Path(tmp) / "warm-up").steps

    def wait_for(path, timeout=120):
        deadline = time.monotonic() + timeout
        while not Path(path).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(path)
            time.sleep(0.002)

    print("ready", flush=True)
    for line in sys.stdin:
        verb, _, arg = line.partition(" ")
        if verb == "run":
            request = json.loads(arg)
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    sys.stdin.close()
                    exec(request["code"], {**globals(), "P": request["params"]})
                except BaseException:
                    traceback.print_exc()
                    code = 1
                sys.stderr.flush()
                os._exit(code)
            print(pid, flush=True)
        elif verb == "wait":
            _, status = os.waitpid(int(arg), 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
    """
)


class Zygote:
    """Runs programs in processes forked from a warm ``ZYGOTE``."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        assert line, "the zygote died"
        return line.strip()

    def _ask(self, line: str) -> str:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line + "\n")
        self._proc.stdin.flush()
        return self._read()

    def run(self, code: str, params: dict[str, Any]) -> int:
        """Start ``code`` (``P`` holds ``params``) in a forked process; its pid."""
        return int(self._ask("run " + json.dumps({"code": code, "params": params})))

    def wait(self, pid: int) -> int:
        """The exit code of process ``pid`` (negative: killed by that signal)."""
        return int(self._ask(f"wait {pid}"))

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(30)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


_ZYGOTE: list[Zygote] = []


def shared_zygote() -> Zygote:
    """The session's zygote (shared by the test modules that fork writers), made once."""
    if not _ZYGOTE:
        _ZYGOTE.append(Zygote())
        atexit.register(_ZYGOTE[0].close)
    return _ZYGOTE[0]


@pytest.fixture
def zygote() -> Zygote:
    return shared_zygote()


#: A writer: ``steps`` steps (an epoch every 3), then ``ready`` is written and it waits for
#: ``go`` (if given) before ``more`` steps and closing; ``out`` gets what happened, as JSON.
WRITER = textwrap.dedent(
    """
    out = {}
    try:
        torch.manual_seed(P["seed"])
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with runlint.record(model, opt, P["logdir"], flush_every=2, background=False,
                                **P["options"]) as rec:
                out["logdir"], out["start"] = str(rec.logdir), rec.step

                def train(n):
                    for _ in range(n):
                        loss = model(torch.randn(8, 8)).pow(2).mean()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        rec.log(loss=loss, writer=P["seed"])
                        if rec.step % 3 == 0:
                            rec.log_epoch(val_loss=loss)

                train(P["steps"])
                if P["ready"]:
                    Path(P["ready"]).write_text(str(rec.logdir))
                if P["go"]:
                    wait_for(P["go"])
                train(P["more"])
        out["warnings"] = [str(w.message) for w in caught if "runlint" in str(w.message)]
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    Path(P["out"]).write_text(json.dumps(out))
    """
)


class Writer:
    """A writer process recording into ``logdir``."""

    def __init__(
        self,
        zygote: Zygote,
        tmp: Path,
        name: str,
        logdir: Path,
        *,
        steps: int = 4,
        more: int = 0,
        hold: bool = False,
        seed: int = 0,
        **options: Any,
    ) -> None:
        self.zygote = zygote
        self.ready = tmp / f"{name}.ready"
        self.go = tmp / f"{name}.go"
        self.out = tmp / f"{name}.json"
        params = {
            "seed": seed,
            "logdir": str(logdir),
            "steps": steps,
            "more": more,
            "options": options,
            "ready": str(self.ready),
            "go": str(self.go) if hold else None,
            "out": str(self.out),
        }
        self.pid = zygote.run(WRITER, params)
        self.exitcode: int | None = None

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            assert not self.out.exists(), self.out.read_text()
            assert time.monotonic() < deadline, "the writer never got ready"
            time.sleep(0.005)

    def release(self) -> None:
        self.go.write_text("go")

    def result(self) -> dict[str, Any]:
        self.exitcode = self.zygote.wait(self.pid)
        assert self.exitcode == 0, f"writer died: {self.exitcode}"
        return dict(json.loads(self.out.read_text()))

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        assert self.zygote.wait(self.pid) == -signal.SIGKILL


def _writers(raw: Any) -> set[int]:
    return {int(v) for v in raw["steps"]["writer"]}


# -- two writers at once --------------------------------------------------------------------
def test_second_writer_is_refused_while_the_first_records(zygote: Zygote, tmp_path: Path) -> None:
    logdir = tmp_path / "run-042"
    first = Writer(zygote, tmp_path, "a", logdir, steps=4, more=2, hold=True, seed=1)
    first.wait_ready()
    second = Writer(zygote, tmp_path, "b", logdir, steps=4, seed=2).result()
    resumer = Writer(zygote, tmp_path, "c", logdir, steps=4, seed=3, resume=True).result()
    overwriter = Writer(zygote, tmp_path, "d", logdir, steps=4, seed=4, overwrite=True).result()
    first.release()
    assert "error" not in first.result()

    for refused in (second, resumer, overwriter):  # a live run is never mixed into
        assert refused["error"].startswith("RunExistsError: runlint: ")
        assert "is being recorded by pid" in refused["error"]
        assert f"on host {socket.gethostname()}" in refused["error"]
        assert "on_conflict='new'" in refused["error"]
    run = runlint.load_run(logdir)
    assert run.complete and _writers(run.raw) == {1}
    assert list(run.raw["steps"]["step"]) == list(range(6))
    assert not (tmp_path / "run-042.1").exists()


def test_second_writer_with_on_conflict_new_records_into_a_sibling(
    zygote: Zygote, tmp_path: Path
) -> None:
    logdir = tmp_path / "run-042"
    first = Writer(zygote, tmp_path, "a", logdir, steps=4, more=2, hold=True, seed=1)
    first.wait_ready()
    second = Writer(zygote, tmp_path, "b", logdir, steps=5, seed=2, on_conflict="new").result()
    third = Writer(zygote, tmp_path, "c", logdir, steps=3, seed=3, on_conflict="new").result()
    first.release()
    first.result()

    assert second["logdir"] == str(tmp_path / "run-042.1")
    assert third["logdir"] == str(tmp_path / "run-042.2")  # .1 holds a finished run
    assert any("run-042 is taken; recording into" in w for w in second["warnings"])
    for path, writer, steps in ((logdir, 1, 6), (tmp_path / "run-042.1", 2, 5)):
        run = runlint.load_run(path)
        assert run.complete and _writers(run.raw) == {writer}
        assert list(run.raw["steps"]["step"]) == list(range(steps))


#: A rank of a two-process gloo job recording with ``on_conflict="new"``.
RANK = textwrap.dedent(
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    out = {}
    try:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{P['port']}", rank=P["rank"], world_size=2
        )
        torch.manual_seed(0)
        model = DDP(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with runlint.record(model, opt, P["logdir"], on_conflict="new", background=False) as rec:
            out["logdir"] = str(rec.logdir)
            for _ in range(3):
                loss = model(torch.randn(8, 8)).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rec.log(loss=loss, writer=9)
        dist.destroy_process_group()
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    Path(P["out"]).write_text(json.dumps(out))
    """
)


def test_ranks_of_a_job_follow_rank_0_to_a_sibling(zygote: Zygote, tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    holder = Writer(zygote, tmp_path, "a", logdir, steps=2, hold=True, seed=1)
    holder.wait_ready()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outs = [tmp_path / f"rank{r}.json" for r in (0, 1)]
    pids = [
        zygote.run(RANK, {"port": port, "rank": r, "logdir": str(logdir), "out": str(outs[r])})
        for r in (0, 1)
    ]
    assert [zygote.wait(pid) for pid in pids] == [0, 0]
    holder.release()
    holder.result()
    results = [json.loads(out.read_text()) for out in outs]
    assert [r.get("logdir") for r in results] == [str(tmp_path / "run.1")] * 2, results
    job = runlint.load_run(tmp_path / "run.1")
    assert sorted(set(job.raw["steps"]["rank"])) == [0, 1] and _writers(job.raw) == {9}
    assert _writers(runlint.load_run(logdir).raw) == {1}


# -- a rerun into a finished run ------------------------------------------------------------
def test_rerun_into_a_finished_run_is_refused_and_changes_nothing(
    zygote: Zygote, tmp_path: Path
) -> None:
    logdir = tmp_path / "run"
    Writer(zygote, tmp_path, "a", logdir, steps=5, seed=1).result()
    before = {p.name: p.stat().st_mtime_ns for p in logdir.iterdir()}
    again = Writer(zygote, tmp_path, "b", logdir, steps=3, seed=2).result()
    assert again["error"].startswith("RunExistsError: runlint: ")
    assert "already holds a finished run (5 steps)" in again["error"]
    assert "resume=True" in again["error"] and "overwrite=True" in again["error"]
    after = {p.name: p.stat().st_mtime_ns for p in logdir.iterdir()}
    assert {k: v for k, v in after.items() if k != ".runlint-r0.lock"} == {
        k: v for k, v in before.items() if k != ".runlint-r0.lock"
    }
    assert _writers(runlint.load_run(logdir).raw) == {1}


def test_overwrite_replaces_a_finished_run(zygote: Zygote, tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    Writer(zygote, tmp_path, "a", logdir, steps=5, seed=1).result()
    assert (
        "error"
        not in Writer(zygote, tmp_path, "b", logdir, steps=3, seed=2, overwrite=True).result()
    )
    run = runlint.load_run(logdir)
    assert run.complete and _writers(run.raw) == {2}
    assert list(run.raw["steps"]["step"]) == [0, 1, 2] and list(run.epochs.index) == [0]


def test_resume_appends_after_the_last_step_and_keeps_the_start(
    zygote: Zygote, tmp_path: Path
) -> None:
    logdir = tmp_path / "run"
    Writer(zygote, tmp_path, "a", logdir, steps=6, seed=1).result()
    first = runlint.load_run(logdir)
    got = Writer(zygote, tmp_path, "b", logdir, steps=4, seed=2, resume=True).result()
    assert "error" not in got and got["start"] == 6
    run = runlint.load_run(logdir)
    assert run.complete and run.meta["steps"] == 10 and run.meta["resumed"] == [6]
    raw = run.raw["steps"].sort_values("step")
    assert list(raw["step"]) == list(range(10))
    assert list(raw["writer"]) == [1] * 6 + [2] * 4
    assert list(run.raw["groups"]["step"].sort_values()) == list(range(10))
    assert list(run.epochs.index) == [0, 1, 2] and list(run.epochs["step"]) == [3, 6, 9]
    # the start of the run is the first recording's, not the resumed weights'
    assert run.meta["params"] == first.meta["params"]
    assert (logdir / "steps-r0.parquet").exists() and not (logdir / "parts").exists()


# -- a writer killed while holding the lock -------------------------------------------------
def test_killed_writer_leaves_the_lock_to_the_next_one(zygote: Zygote, tmp_path: Path) -> None:
    logdir = tmp_path / "run"
    first = Writer(zygote, tmp_path, "a", logdir, steps=5, hold=True, seed=1)
    first.wait_ready()
    first.kill()  # SIGKILL while recording: the OS drops its lock

    plain = Writer(zygote, tmp_path, "b", logdir, steps=2, seed=2).result()
    assert "holds a run that was not closed" in plain["error"]  # refused for the data only
    got = Writer(zygote, tmp_path, "c", logdir, steps=3, seed=3, resume=True).result()
    assert "error" not in got
    run = runlint.load_run(logdir)
    assert run.complete
    raw = run.raw["steps"].sort_values("step")
    start = got["start"]
    assert start >= 3  # flush_every=2 and an epoch at step 3: steps 0-2 were flushed
    assert list(raw["step"]) == list(range(start + 3))  # no step twice, none missing
    assert list(raw["writer"]) == [1] * start + [3] * 3


# -- in one process -------------------------------------------------------------------------
def _model() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def _steps(model: nn.Module, opt: torch.optim.Optimizer, rec: Any, n: int) -> None:
    for _ in range(n):
        loss = model(torch.randn(4, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.log(loss=loss)


def test_second_recorder_in_the_same_process_is_refused(tmp_path: Path) -> None:
    model, opt = _model()
    with runlint.record(model, opt, tmp_path / "r") as rec:
        _steps(model, opt, rec, 2)
        other, other_opt = _model()
        with pytest.raises(RunExistsError, match="is being recorded by this process"):
            runlint.record(other, other_opt, tmp_path / "r").__enter__()
        assert not any(m._forward_pre_hooks for m in other.modules())
        _steps(model, opt, rec, 2)
    run = runlint.load_run(tmp_path / "r")
    assert run.complete and list(run.steps.index) == [0, 1, 2, 3]
    with pytest.raises(FileExistsError, match="already holds a finished run"):
        runlint.record(model, opt, tmp_path / "r").start()


def test_ranks_of_one_job_share_a_directory_and_a_second_job_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each rank locks its own file: the ranks of one job never collide, two jobs do."""
    ranks = iter([(0, 2), (1, 2), (0, 1)])
    monkeypatch.setattr(recorder_module, "_dist_rank", lambda: next(ranks))
    model, opt = _model()
    rank0 = runlint.record(model, opt, tmp_path / "r").__enter__()
    with runlint.record(model, opt, tmp_path / "r") as rank1:
        _steps(model, opt, rank0, 2)
        rank1.log(loss=1.0)
        with pytest.raises(RunExistsError, match="is being recorded by this process"):
            runlint.record(model, opt, tmp_path / "r").start()  # another job's rank 0
    _steps(model, opt, rank0, 2)  # rank 1 closed first: rank 0 still writes its parts
    rank0.close()
    assert sorted(p.name for p in (tmp_path / "r").glob("steps-*")) == [
        "steps-r0.parquet",
        "steps-r1.parquet",
    ]


def test_options_are_checked_when_the_recorder_is_made(tmp_path: Path) -> None:
    model, opt = _model()
    with pytest.raises(ValueError, match="on_conflict must be one of"):
        runlint.record(model, opt, tmp_path / "r", on_conflict="append")
    with pytest.raises(ValueError, match="contradict"):
        runlint.record(model, opt, tmp_path / "r", resume=True, overwrite=True)
    assert not (tmp_path / "r").exists()


def test_resume_into_an_empty_directory_starts_a_run(tmp_path: Path) -> None:
    model, opt = _model()
    with runlint.record(model, opt, tmp_path / "r", resume=True) as rec:
        _steps(model, opt, rec, 2)
    run = runlint.load_run(tmp_path / "r")
    assert list(run.steps.index) == [0, 1] and "resumed" not in run.meta


def test_lock_file_fallback_detects_live_and_stale_owners(tmp_path: Path) -> None:
    """Where the OS offers no advisory locks, an O_EXCL lock file naming host and pid."""
    path = tmp_path / ".runlint-r0.lock"
    lock = RunLock.acquire(path, method="pidfile")
    with pytest.raises(LockHeld, match="this process"):
        RunLock.acquire(path, method="pidfile")
    lock.release()
    again = RunLock.acquire(path, method="pidfile")  # released: free
    pid_file = again.path
    again._fd = None  # as if its process had died without releasing
    pid_file.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        taken = RunLock.acquire(path, method="pidfile")  # stale: taken over
    assert json.loads(pid_file.read_text())["pid"] == os.getpid()
    taken.release()
    assert not pid_file.exists()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
