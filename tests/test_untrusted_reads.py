"""Reading untrusted log folders is bounded: no input hangs the walk or a read, nothing is read
through a link out of the checked tree, unreadable folders are one line each and the walk goes
on, and per-run limits stop a small file that decodes to gigabytes (``runlint.run.limits``)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers_cli import ROOT, invoke
from test_loader_synth import write_run

from runlint.check.config import ConfigError, parse_config
from runlint.run import RunError, limits, load_run
from runlint.run.find import Found, Passed, walk

NAN_LOSS = np.r_[np.linspace(2.3, 1.0, 30), np.full(10, np.nan)]


def check_subprocess(
    *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``runlint check`` in a fresh process that must end within ``timeout`` (a hang fails)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "runlint", "check", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env=env,
    )


def _json_runs(doc: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {Path(r["path"]).name: r for r in doc["runs"]}


@pytest.fixture(scope="module")
def trap_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Healthy runs between FIFOs, devices, link loops and links out of the tree."""
    base = tmp_path_factory.mktemp("traps")
    secret = base / "secret.txt"
    secret.write_text("step,loss\n0,SECRET\n")
    root = base / "logs"
    write_run(root / "a-healthy", steps=40, loss=NAN_LOSS)
    fifo_meta = write_run(root / "fifo-meta", steps=40, write_meta=False)
    os.mkfifo(fifo_meta / "meta.json")
    fifo_table = write_run(root / "fifo-table", steps=40)
    (fifo_table / "steps-r0.parquet").unlink()
    os.mkfifo(fifo_table / "steps-r0.parquet")
    (root / "fifo-csv").mkdir()
    os.mkfifo(root / "fifo-csv" / "metrics.csv")
    (root / "fifo-hf").mkdir()
    os.mkfifo(root / "fifo-hf" / "trainer_state.json")
    zero = write_run(root / "dev-zero", steps=40)
    (zero / "steps-r0.parquet").unlink()
    (zero / "steps-r0.parquet").symlink_to("/dev/zero")
    (root / "csv-out").mkdir()
    (root / "csv-out" / "metrics.csv").symlink_to(secret)
    (root / "loop-a").symlink_to(root / "loop-b")
    (root / "loop-b").symlink_to(root / "loop-a")
    (root / "nest").mkdir()
    (root / "nest" / "up").symlink_to(root)
    (root / "slash").symlink_to("/")
    write_run(root / "z-healthy", steps=40, loss=NAN_LOSS)
    return root


def test_fifos_devices_and_link_loops_never_hang_the_check(trap_tree: Path) -> None:
    proc = check_subprocess(str(trap_tree), "--select", "RL103", "-f", "json", cwd=trap_tree.parent)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    runs = _json_runs(doc)
    assert runs["a-healthy"]["status"] == runs["z-healthy"]["status"] == "ok"
    assert [f["run"].rsplit("/", 1)[-1] for f in doc["findings"]] == ["a-healthy", "z-healthy"]
    assert "meta.json" in runs["fifo-meta"]["error"] and "FIFO" in runs["fifo-meta"]["error"]
    assert "FIFO" in runs["fifo-table"]["error"]
    assert "FIFO" in runs["fifo-csv"]["error"] and "FIFO" in runs["fifo-hf"]["error"]
    assert "link out of the checked folder" in runs["dev-zero"]["error"]
    assert "link out of the checked folder" in runs["csv-out"]["error"]
    assert "SECRET" not in proc.stdout + proc.stderr
    passed = {Path(p["path"]).name: p["reason"] for p in doc["summary"]["passed_over"]}
    assert "link out of the checked folder" in passed["slash"]
    assert "already walked" in passed["up"]
    for error in (r["error"] for r in doc["runs"] if r["error"]):
        assert "\n" not in error and len(error) < 300


def test_walk_follows_links_inside_the_tree_once(tmp_path: Path) -> None:
    run = write_run(tmp_path / "logs" / "exp" / "run-1", steps=5)
    (tmp_path / "logs" / "latest").symlink_to(tmp_path / "logs" / "exp")
    (tmp_path / "logs" / "exp" / "self").symlink_to(tmp_path / "logs" / "exp")
    events = list(walk(tmp_path / "logs"))
    assert [e.path for e in events if isinstance(e, Found)] == [run]
    assert sum(isinstance(e, Passed) for e in events) == 2  # the second way into exp, and self


def test_walk_is_bounded_in_depth(tmp_path: Path) -> None:
    deep = tmp_path
    for _ in range(12):
        deep = deep / "d"
    write_run(deep / "run", steps=5)
    events = list(walk(tmp_path, max_depth=8))
    assert not [e for e in events if isinstance(e, Found)]
    (passed,) = [e for e in events if isinstance(e, Passed)]
    assert "deeper than 8 folders" in passed.reason


def _as_nobody(work: Path, argv: list[str]) -> tuple[int, str, str]:
    """``runlint *argv`` in a forked child that dropped to the user ``nobody`` (root reads any
    folder, so an unreadable one needs another user); modules are imported before the fork."""
    invoke(*argv)  # imports what the check needs, as root, before the fork
    read_out, write_out = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(read_out)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.chdir(work)
            out, err = io.StringIO(), io.StringIO()
            from runlint import cli

            with redirect_stdout(out), redirect_stderr(err):
                code = cli.invoke(argv)
            os.write(write_out, json.dumps([code, out.getvalue(), err.getvalue()]).encode())
        finally:
            os._exit(0 if code != 99 else 1)
    os.close(write_out)
    with os.fdopen(read_out, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    code, out, err = json.loads(data)
    return code, out, err


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="runlint-nobody-"))
    path.chmod(0o755)
    yield path
    for folder, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(folder, d), 0o755)
    import shutil

    shutil.rmtree(path)


@pytest.mark.skipif(
    not hasattr(os, "fork") or os.geteuid() != 0, reason="needs root to drop to nobody"
)
def test_an_unreadable_folder_is_one_line_and_the_runs_after_it_are_checked(
    world_readable_tmp: Path,
) -> None:
    root = world_readable_tmp / "logs"
    for name in ("a", "b-locked/inner", "c"):
        write_run(root / name, steps=40, loss=NAN_LOSS)
    for folder, _dirs, files in os.walk(world_readable_tmp):
        os.chmod(folder, 0o755)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)
    (root / "b-locked").chmod(0o000)
    code, out, err = _as_nobody(
        world_readable_tmp, ["check", "logs", "--select", "RL103", "-f", "json"]
    )
    assert code == 2 and "Traceback" not in err
    doc = json.loads(out)
    errors = [r["error"] for r in doc["runs"] if r["status"] == "error"]
    assert len(errors) == 1 and "b-locked: cannot list (Permission denied)" in errors[0]
    assert sorted(f["run"].rsplit("/", 1)[-1] for f in doc["findings"]) == ["a", "c"]


# -- limits -----------------------------------------------------------------------------------


def _bomb(root: Path, rows: int, columns: int) -> Path:
    """A run whose steps table is one value repeated: a tiny file that decodes to a lot."""
    root.mkdir(parents=True)
    values = pa.array(np.ones(rows))
    table = pa.table(
        {"step": pa.array(np.arange(rows)), **{f"m{i}": values for i in range(columns)}}
    )
    pq.write_table(table, root / "steps-r0.parquet", compression="zstd")
    (root / "meta.json").write_text('{"meta": {"num_classes": 10}}')
    return root


def test_a_small_file_that_decodes_to_gigabytes_is_too_large_before_it_is_read(
    tmp_path: Path,
) -> None:
    bomb = _bomb(tmp_path / "bomb", rows=200_000, columns=30)
    assert (bomb / "steps-r0.parquet").stat().st_size < 1_000_000  # 47 MiB decoded
    small = limits.Limits(max_bytes=16 * limits.MiB)
    with (
        limits.using(small),
        pytest.raises(
            RunError, match=r"tables decoded: too large \(47\.\d MiB > 16 MiB; raise max-bytes"
        ),
    ):
        load_run(bomb)
    with (
        limits.using(limits.Limits(max_rows=100_000)),
        pytest.raises(RunError, match=r"steps table: too large \(200,000 rows > 100,000"),
    ):
        load_run(bomb)
    assert load_run(bomb).steps.shape == (200_000, 30)  # within the default limits


def test_limits_come_from_the_config_and_name_their_key(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "logs" / "bomb", rows=200_000, columns=30)
    write_run(tmp_path / "logs" / "ok", steps=40, loss=NAN_LOSS)
    (tmp_path / "runlint.toml").write_text('max-bytes = "16 MiB"\nmax-meta-bytes = 20\n')
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = invoke("check", "logs", "--select", "RL103", "-f", "json")
    finally:
        os.chdir(old)
    assert result.exit_code == 2
    runs = _json_runs(json.loads(result.stdout))
    assert (
        "raise max-bytes in [tool.runlint]" in runs["bomb"]["error"]
        or "max-meta-bytes" in runs["bomb"]["error"]
    )
    assert "meta.json: too large" in runs["ok"]["error"] and "max-meta-bytes" in runs["ok"]["error"]
    assert bomb.exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1000, 1000), ("512 MiB", 512 << 20), ("2GiB", 2 << 30), ("1.5 MB", 1_500_000)],
)
def test_byte_limits_accept_sizes(value: object, expected: int) -> None:
    assert parse_config({"max-bytes": value}).limits == {"max_bytes": expected}


@pytest.mark.parametrize("value", [0, -1, "lots", True, 1.5, "3 parsecs"])
def test_bad_limits_are_config_errors(value: object) -> None:
    with pytest.raises(ConfigError, match="max-bytes must be a positive number of bytes"):
        parse_config({"max-bytes": value})
    with pytest.raises(ConfigError, match="max-rows must be a positive number of rows"):
        parse_config({"max-rows": value if value != "512 MiB" else 0})


def test_too_many_files_and_a_huge_footer_are_too_large(tmp_path: Path) -> None:
    run = write_run(tmp_path / "parts", steps=40, parts=True)
    with (
        limits.using(limits.Limits(max_files=3)),
        pytest.raises(RunError, match=r"Parquet files: too large \(\d+ files > 3"),
    ):
        load_run(run)
    with (
        limits.using(limits.Limits(max_meta_bytes=64)),
        pytest.raises(RunError, match=r"footer: too large"),
    ):
        load_run(write_run(tmp_path / "small", steps=40, write_meta=False))


def test_foreign_logs_are_held_to_the_limits(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "metrics.csv").write_text(
        "step,train_loss\n" + "".join(f"{i},1.0\n" for i in range(5000))
    )
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "trainer_state.json").write_text(
        json.dumps({"log_history": [{"loss": 1.0, "step": i} for i in range(5000)]})
    )
    tight = limits.Limits(max_bytes=1000)
    with limits.using(tight):
        with pytest.raises(RunError, match=r"metrics.csv: too large .*max-bytes"):
            load_run(tmp_path / "pl")
        with pytest.raises(RunError, match=r"trainer_state.json: too large .*max-bytes"):
            load_run(tmp_path / "hf")


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(limits.NotRegular, match="FIFO"):
        limits.read_bytes(tmp_path / "fifo")
    with pytest.raises(limits.NotRegular, match="character device"):
        limits.read_bytes(Path("/dev/zero"))
    (tmp_path / "inside").mkdir()
    (tmp_path / "inside" / "link").symlink_to(tmp_path / "fifo")
    with (
        limits.using(limits.DEFAULT.with_roots([tmp_path / "inside"])),
        pytest.raises(limits.NotRegular, match="link out"),
    ):
        limits.read_bytes(tmp_path / "inside" / "link")
