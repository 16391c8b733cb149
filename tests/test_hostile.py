"""The hostile-input suite (issue 16): every class of hostile log folder, generated on the fly
(``hostile_inputs``), is one clean line in every format, with no traceback, no hang and bounded
memory; the readers take any bytes; a recorder killed at random moments (during flushes too)
leaves a run that loads with every flushed step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_cli import ROOT
from hostile_inputs import CASES, run_suite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_loader_synth import write_run

from runlint.run import RunError, load_run

#: The memory a check of the hostile tree may take (checking process and workers, each):
#: the runs over the limits are refused before they are read, so this is a small check's.
PEAK_MIB = 512


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temporary folder others than root may enter (the suite drops to ``nobody``)."""
    path = Path(tempfile.mkdtemp(prefix="runlint-hostile-"))
    try:
        yield path
    finally:
        for folder, dirs, _ in os.walk(path):
            for d in dirs:
                os.chmod(os.path.join(folder, d), 0o755)
        shutil.rmtree(path, ignore_errors=True)


def test_every_hostile_input_is_one_clean_line_in_every_format(scratch: Path) -> None:
    totals = run_suite(scratch, timeout=240)
    assert totals.problems == []
    assert totals.clean == totals.inputs >= len(CASES) - 2
    assert totals.tracebacks == 0 and totals.hangs == 0
    assert totals.peak_mib <= PEAK_MIB, totals.line()
    print(totals.line())


# -- the readers take any bytes --------------------------------------------------------------

READERS = {
    "meta.json": lambda p: write_run(p, steps=20),
    "steps-r0.parquet": lambda p: write_run(p, steps=20),
    "trainer_state.json": lambda p: p.mkdir(parents=True),
    "metrics.csv": lambda p: p.mkdir(parents=True),
    "events.out.tfevents.1.host": lambda p: p.mkdir(parents=True),
    "hparams.yaml": lambda p: (
        p.mkdir(parents=True),
        (p / "metrics.csv").write_text("step,loss\n0,1\n"),
    ),
}

#: Bytes that look like the file they replace, often: a valid prefix, then anything.
PREFIXES = [b"", b"{", b'{"meta": ', b"PAR1", b"step,loss\n", b'{"log_history": [', b"\x00" * 12]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.sampled_from(sorted(READERS)), st.sampled_from(PREFIXES), st.binary(max_size=300))
def test_any_bytes_in_any_file_a_reader_opens_load_or_are_one_run_error(
    tmp_path: Path, name: str, prefix: bytes, data: bytes
) -> None:
    run = tmp_path / f"r{abs(hash((name, prefix, data)))}"
    READERS[name](run)
    (run / name).write_bytes(prefix + data)
    try:
        loaded = load_run(run)
        for table in ("steps", "epochs", "params"):
            getattr(loaded, table)
    except RunError as exc:
        assert "\n" not in str(exc) and str(run) in str(exc)


# -- SIGKILL at random moments ---------------------------------------------------------------------

#: One process imports torch once, then forks a recording child per kill; each child reports
#: each flush that is on disk ("S <steps>") and, through patched os.replace / pq.write_table,
#: the moment a flush writes ("W") and renames ("F"), so that some kills land inside a flush.
DRIVER = textwrap.dedent(
    r"""
    import json, os, random, select, signal, sys, time
    import torch, pyarrow.parquet as pq, runlint
    from torch import nn
    torch.set_num_threads(1)
    root, kills, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    report = {"kills": 0, "during_write": 0, "during_rename": 0, "failures": [], "steps": []}

    def child(logdir, out):
        real_replace, real_write = os.replace, pq.write_table
        def replace(a, b):
            os.write(out, b"F\n"); time.sleep(0.004); real_replace(a, b)
        def write(*a, **k):
            os.write(out, b"W\n"); time.sleep(0.002); real_write(*a, **k)
        os.replace, pq.write_table = replace, write
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        with runlint.record(model, opt, logdir, flush_every=5, stats_every=2) as rec:
            while True:
                loss = model(torch.randn(8, 8)).pow(2).mean()
                opt.zero_grad(); loss.backward(); opt.step()
                rec.log(loss=loss)
                if rec.step % 5 == 0:
                    rec._writer.drain()  # steps 0 .. rec.step - 2 are on disk
                    os.write(out, f"S {rec.step - 1}\n".encode())

    for i in range(kills):
        logdir = os.path.join(root, f"run-{i:02d}")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                child(logdir, write)
            finally:
                os._exit(1)
        os.close(write)
        mode = ["time", "write", "rename"][i % 3]
        delay, deadline = rng.uniform(0.0, 0.4), None  # from the child's first flush on
        nth = rng.randint(1, 8)
        flushed, seen, buf, hit = 0, 0, b"", False
        while True:
            timed = mode == "time" and deadline is not None
            wait = max(0.0, deadline - time.monotonic()) if timed else 5.0
            ready, _, _ = select.select([read], [], [], wait)
            if not ready:
                break
            chunk = os.read(read, 4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if deadline is None and lines:
                deadline = time.monotonic() + delay
            for line in lines:
                if line.startswith(b"S "):
                    flushed = int(line[2:])
                elif mode != "time" and line == (b"W" if mode == "write" else b"F"):
                    seen += 1
                    hit = hit or seen >= nth
            if hit or (mode == "time" and deadline and time.monotonic() >= deadline):
                break
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while True:  # what the child said before it died
            ready, _, _ = select.select([read], [], [], 0)
            chunk = os.read(read, 4096) if ready else b""
            if not chunk:
                break
            buf += chunk
        for line in buf.split(b"\n"):
            if line.startswith(b"S "):
                flushed = int(line[2:])
        os.close(read)
        report["kills"] += 1
        if hit:
            report["during_" + mode] += 1
        try:
            run = runlint.load_run(logdir)
            logged = list(run.steps.dropna(subset=["loss"]).index) if "loss" in run.steps else []
        except runlint.RunError as exc:
            if flushed:
                report["failures"].append(f"{logdir}: {flushed} steps flushed, load failed: {exc}")
            continue
        if logged != list(range(len(logged))) or len(logged) < flushed:
            report["failures"].append(f"{logdir}: {flushed} flushed, {len(logged)} loaded")
        report["steps"].append(len(logged))
    print(json.dumps(report))
    """
)


def test_a_recorder_killed_at_random_moments_keeps_every_flushed_step(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path), "21", "1234"],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["failures"] == []
    assert report["kills"] >= 20
    assert report["during_write"] >= 3 and report["during_rename"] >= 3  # inside flushes
    assert sum(n > 0 for n in report["steps"]) >= 10, report  # many children flushed steps
    inside = report["during_write"] + report["during_rename"]
    print(f"{report['kills']} kills, {inside} inside a flush")
