"""Hostile log folders, generated on the fly, and a harness that checks them the way CI would.

``build(root)`` writes one folder of runs: every class of hostile input of issue 16 (names that
inject workflow commands or terminal escapes, a config that switches the gate off, FIFOs,
sockets, link loops and links out of the tree, a Parquet bomb, oversized metadata, unreadable
folders and files, a run that kills its worker, non-UTF-8 names, garbage metadata, damaged
files of every reader, a loss logged every 10th step) between healthy runs. Each input is one
``Case``, with what the report must say about it.

``run_suite(root)`` runs ``runlint check`` on it in fresh processes, in every format, as the
user ``nobody`` when started as root (root reads folders that are not readable), with ``-j 2``
and a rule that SIGKILLs the process checking a run named ``victim`` (as the OOM killer would);
it returns the ``Totals`` that README quotes:

    python tests/hostile_inputs.py        # prints the totals line
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from test_loader_synth import write_run  # noqa: E402

ROOT = HERE.parent
FORMATS = ("text", "json", "github", "sarif", "junit")
NAN_LOSS = np.r_[np.linspace(2.3, 1.0, 30), np.full(10, np.nan)]
HEALTHY = np.linspace(2.3, 0.5, 40)


@dataclass(frozen=True)
class Case:
    """One hostile input: the folder it is, and what the JSON report must say about it."""

    name: str  # the folder under logs/ (its JSON path ends with it, escaped)
    build: Callable[[Path], None]
    #: "checked" (status ok/incomplete, no error), "error" (one error line), "note" (checked,
    #: one note line), "passed" (in passed_over)
    expect: str
    #: words the line must hold
    says: str = ""
    #: codes of findings the run must (``+RL103``) or must not (``-RL103``) get
    findings: tuple[str, ...] = ()
    #: only when the check runs as a user other than root
    needs_non_root: bool = False


def _run(path: Path, **kw: object) -> Path:
    return write_run(path, steps=40, **kw)  # type: ignore[arg-type]


def _named(name: str) -> Callable[[Path], None]:
    return lambda p: (_run(p, loss=NAN_LOSS), None)[1]


def _fifo(file: str, setup: Callable[[Path], None] | None = None) -> Callable[[Path], None]:
    def build(p: Path) -> None:
        p.mkdir(parents=True)
        if setup is not None:
            setup(p)
        target = p / file
        if target.exists():
            target.unlink()
        os.mkfifo(target)

    return build


def _socket_meta(p: Path) -> None:
    _run(p, write_meta=False)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(p / "meta.json"))
    finally:
        sock.close()


def _bomb(rows_per_group: int, groups: int, columns: int) -> Callable[[Path], None]:
    """One value repeated: a file of well under a megabyte that decodes to hundreds."""

    def build(p: Path) -> None:
        p.mkdir(parents=True)
        ones = pa.array(np.ones(rows_per_group))
        schema = pa.schema(
            [("step", pa.int64()), *[(f"m{i}", pa.float64()) for i in range(columns)]]
        )
        with pq.ParquetWriter(p / "steps-r0.parquet", schema, compression="zstd") as writer:
            for g in range(groups):
                step = pa.array(np.arange(g * rows_per_group, (g + 1) * rows_per_group))
                writer.write_table(pa.table([step, *[ones] * columns], schema=schema))
        (p / "meta.json").write_text('{"meta": {"num_classes": 10}}')

    return build


def _huge_meta(p: Path) -> None:
    _run(p)
    (p / "meta.json").write_text(json.dumps({"meta": {"model": "x" * (20 << 20)}}))


def _many_parts(p: Path) -> None:
    _run(p)
    (p / "steps-r0.parquet").unlink()  # a run killed early: its steps are all in parts
    (p / "parts").mkdir()
    for i in range(10_001):
        (p / "parts" / f"steps-r0-{i:06d}.parquet").touch()


def _lying_footer(p: Path) -> None:
    _run(p)
    (p / "steps-r0.parquet").write_bytes(
        b"PAR1" + b"\0" * 64 + (2**31).to_bytes(4, "little") + b"PAR1"
    )


def _parquet_bytes(data: bytes) -> Callable[[Path], None]:
    def build(p: Path) -> None:
        _run(p)
        (p / "steps-r0.parquet").write_bytes(data)

    return build


def _truncated(p: Path) -> None:
    _run(p)
    file = p / "steps-r0.parquet"
    file.write_bytes(file.read_bytes()[:-40])


def _meta_text(text: str) -> Callable[[Path], None]:
    def build(p: Path) -> None:
        _run(p)
        (p / "meta.json").write_text(text)

    return build


def _garbage_meta(meta: dict[str, object]) -> Callable[[Path], None]:
    return lambda p: (_run(p, meta=meta), None)[1]


def _file(name: str, data: bytes) -> Callable[[Path], None]:
    def build(p: Path) -> None:
        p.mkdir(parents=True)
        (p / name).write_bytes(data)

    return build


def _escaped_keys(p: Path) -> None:
    _run(p, loss=NAN_LOSS, meta={"model": "Net\x1b]0;owned\x07", "loss": "cross_entropy\x1b[2J"})
    table = pq.read_table(p / "params-r0.parquet")
    names = pa.array(
        [f"layer\x1b[31m{s[-8:]}\n::error::x" for s in table.column("param").to_pylist()]
    )
    pq.write_table(
        table.set_column(table.column_names.index("param"), "param", names), p / "params-r0.parquet"
    )


def _sparse_loss(p: Path) -> None:
    write_run(p, steps=200)
    table = pq.read_table(p / "steps-r0.parquet")
    loss = pa.array(table.column("loss").to_numpy(), mask=np.arange(200) % 10 != 0)
    pq.write_table(
        table.set_column(table.column_names.index("loss"), "loss", loss), p / "steps-r0.parquet"
    )


def _locked_folder(p: Path) -> None:
    _run(p / "inner", loss=NAN_LOSS)
    p.chmod(0o000)


def _locked_meta(p: Path) -> None:
    _run(p)
    (p / "meta.json").chmod(0o000)


def _deep(p: Path) -> None:
    deep = p
    for _ in range(70):
        deep = deep / "d"
    _run(deep / "run")


def _gate_off(p: Path) -> None:
    _run(p / "run", loss=NAN_LOSS)
    text = '[tool.runlint]\nignore = ["ALL"]\nexit-zero = true\n'
    (p / "pyproject.toml").write_text(text)
    (p / "run" / "pyproject.toml").write_text(text)
    (p / "run" / "runlint.toml").write_text('ignore = ["ALL"]\n')


def _random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


CASES: list[Case] = [
    # 1. injection into CI logs and terminals
    Case("x\n::warning title=injected::pwned", _named(""), "checked", findings=("+RL103",)),
    Case("esc\x1b[2Jclear", _named(""), "checked", findings=("+RL103",)),
    Case("osc8\x1b]8;;https:evil.example\x1b\\link\x1b]8;;\x1b\\", _named(""), "checked"),
    Case("title\x1b]0;owned\x07", _named(""), "checked"),
    Case("legacy ##[error]pwned", _named(""), "checked"),
    Case("cr\r::error::pwned", _named(""), "checked"),
    Case("bidi\u202egnp.exe", _named(""), "checked"),
    Case("keys-with-escapes", _escaped_keys, "checked"),
    # 2. a config inside the log folder
    Case("gate-off", _gate_off, "checked", findings=("+RL103",)),
    # 3. hangs
    Case(
        "fifo-meta",
        _fifo("meta.json", lambda p: (_run(p, write_meta=False), None)[1]),
        "error",
        "FIFO",
    ),
    Case("fifo-parquet", _fifo("steps-r0.parquet", lambda p: (_run(p), None)[1]), "error", "FIFO"),
    Case("fifo-csv", _fifo("metrics.csv"), "error", "FIFO"),
    Case("fifo-hf", _fifo("trainer_state.json"), "error", "FIFO"),
    Case("fifo-events", _fifo("events.out.tfevents.1.host"), "error", "no TensorBoard event files"),
    Case("socket-meta", _socket_meta, "error", "socket"),
    Case("loop-a", lambda p: p.symlink_to(p.parent / "loop-b"), "passed", "loop of links"),
    Case("loop-b", lambda p: p.symlink_to(p.parent / "loop-a"), "passed", "loop of links"),
    Case("up", lambda p: p.symlink_to(p.parent), "passed", "already walked"),
    Case("slash", lambda p: p.symlink_to("/"), "passed", "out of the checked folder"),
    Case(
        "dev-zero",
        lambda p: (
            _run(p),
            (p / "steps-r0.parquet").unlink(),
            (p / "steps-r0.parquet").symlink_to("/dev/zero"),
            None,
        )[-1],
        "error",
        "link out of the checked folder",
    ),
    Case(
        "passwd",
        lambda p: (p.mkdir(), (p / "metrics.csv").symlink_to("/etc/passwd"), None)[-1],
        "error",
        "link out of the checked folder",
    ),
    Case("deep", _deep, "passed", "deeper than 64 folders"),
    # 4. exhaustion
    Case("bomb-wide", _bomb(100_000, 10, 30), "error", "too large"),
    Case("bomb-long", _bomb(500_000, 6, 1), "error", "too large (3,000,000 rows"),
    Case("huge-meta", _huge_meta, "error", "meta.json: too large"),
    Case("many-parts", _many_parts, "error", "Parquet files: too large"),
    Case("lying-footer", _lying_footer, "error", "footer: too large"),
    # 5. unreadable entries (as a user other than root)
    Case(
        "locked-folder",
        _locked_folder,
        "error",
        "cannot list (Permission denied)",
        needs_non_root=True,
    ),
    Case("locked-meta", _locked_meta, "error", "Permission denied", needs_non_root=True),
    # 6. crashes instead of reports
    Case("victim", _named(""), "error", "killed by SIGKILL"),
    Case(os.fsdecode(b"bytes-\xff\xfe"), _named(""), "checked", findings=("+RL103",)),
    Case(
        "meta-lists",
        _garbage_meta({"params": [[1, 2], "x"], "optimizer": [1, 2]}),
        "note",
        "unreadable metadata",
    ),
    Case(
        "meta-unnamed",
        _garbage_meta({"modules": [{}, {"init_std": []}]}),
        "note",
        "unreadable metadata",
    ),
    Case("meta-invalid", _meta_text("{"), "error", "not valid JSON"),
    Case("meta-nested", _meta_text("[" * 100_000 + "]" * 100_000), "error", ""),
    Case("meta-list", _meta_text("[1, 2]"), "error", "not a JSON object"),
    Case(
        "meta-newer",
        _meta_text('{"format": "runlint-run", "version": 99}'),
        "error",
        "upgrade runlint",
    ),
    Case(
        "meta-odd-numbers",
        _meta_text('{"meta": {"num_classes": 1e400, "batch_size": NaN, "steps": -Infinity}}'),
        "checked",
    ),
    Case("parquet-truncated", _truncated, "error", "not a readable Parquet file"),
    Case(
        "parquet-random",
        _parquet_bytes(_random_bytes(4096, 1)),
        "error",
        "not a readable Parquet file",
    ),
    Case("parquet-empty", _parquet_bytes(b""), "error", "not a readable Parquet file"),
    Case(
        "hf-garbage",
        _file("trainer_state.json", _random_bytes(2000, 2)),
        "error",
        "trainer_state.json",
    ),
    Case("csv-garbage", _file("metrics.csv", _random_bytes(2000, 3)), "error", "metrics.csv"),
    Case(
        "events-garbage", _file("events.out.tfevents.1.host", _random_bytes(2000, 4)), "error", ""
    ),
    # 8. missing is not non-finite
    Case("loss-every-10th", _sparse_loss, "checked", findings=("-RL103", "-RL202")),
]

HEALTHY_RUNS = ("a-healthy", "m-healthy", "zz-healthy")


def build(root: Path) -> Path:
    """Write every case (and healthy runs between them) under ``root/logs``; return it."""
    logs = root / "logs"
    logs.mkdir(parents=True)
    for name in HEALTHY_RUNS:
        write_run(logs / name, steps=40, loss=HEALTHY)
    for case in CASES:
        try:
            case.name.encode("utf-8")
        except UnicodeEncodeError:  # pyarrow writes only to UTF-8 paths: build, then rename
            case.build(logs / "tmp-name")
            os.rename(os.fsencode(logs / "tmp-name"), os.fsencode(logs / case.name))
        else:
            case.build(logs / case.name)
    return logs


# -- the harness ---------------------------------------------------------------------------------

#: Runs ``runlint check`` with a rule that SIGKILLs the process checking a run named victim;
#: as root it first checks the tree once (so every module is imported), then drops to nobody.
WRAPPER = r"""
import io, multiprocessing, multiprocessing.synchronize, os, resource, signal, sys
from contextlib import redirect_stderr, redirect_stdout
sys.path.insert(0, sys.argv[1])
from helpers_rules import SECTIONS
from runlint import cli
from runlint.check import engine
from runlint.check.rule import Rule

class Victim(Rule):
    __doc__ = "Kills the process checking a run named victim." + SECTIONS
    code, name, requires = "RL990", "kills-victim", ("steps.loss",)
    def check(self, run):
        if run.path.name == "victim" and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker's death, never the main process
        yield from ()

catalog = engine.discover()
engine.discover = lambda: engine.Catalog((*catalog.rules, Victim), catalog.errors)
args = sys.argv[3:]
if os.geteuid() == 0 and sys.argv[2] == "nobody":  # import now what the check will need
    healthy = ["check", "logs/a-healthy", "-o", os.devnull]
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        cli.invoke([*args, "-f", "json", "-o", os.devnull, "-j", "1"])  # every reader's path
        for fmt in ("text", "json", "github", "sarif", "junit"):
            cli.invoke([*healthy, "-f", fmt])
        cli.invoke([*healthy, "logs/victim", "-j", "2"])  # the pool's, and a dead worker's
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
code = 2
try:
    code = cli.invoke(args)
finally:  # the peaks since exec (the rusage of a process spawned by a big one counts that one)
    with open("/proc/self/status") as status:
        own = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(os.environ["RUNLINT_PEAK_FILE"], "w") as peak:
        peak.write(str(max(own, workers) / 1024))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
"""


@dataclass
class Totals:
    inputs: int = 0
    clean: int = 0
    tracebacks: int = 0
    hangs: int = 0
    peak_mib: float = 0.0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.inputs} hostile inputs: {self.clean} clean lines, {self.tracebacks} "
            f"tracebacks, {self.hangs} hangs, peak memory ≤ {self.peak_mib:.0f} MiB"
        )


def _check(
    cwd: Path, fmt: str, as_user: str, out: Path, timeout: float
) -> tuple[int | None, str, float]:
    """One ``runlint check logs -j 2 -f fmt -o out``: exit code (None: hung), stderr, peak MiB."""
    argv = [sys.executable, "-c", WRAPPER, str(HERE), as_user, "check", "logs", "-j", "2"]
    argv += ["--select", "ALL", "-o", str(out)]
    peak_file = out.with_suffix(".peak")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "80",
        "RUNLINT_PEAK_FILE": str(peak_file),
    }
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [*argv, "-f", fmt], cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = None
                err.seek(0)
                return None, err.read().decode(errors="replace"), usage.ru_maxrss / 1024
            time.sleep(0.05)
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        peak = float(peak_file.read_text()) if peak_file.exists() else usage.ru_maxrss / 1024
        return code, err.read().decode(errors="replace"), peak


def _world_readable(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path) and os.path.isfile(path):
                os.chmod(path, 0o644)


def run_suite(root: Path, timeout: float = 240) -> Totals:
    """Build the cases under ``root`` and check them in every format; the totals."""
    as_user = "nobody" if os.geteuid() == 0 else "self"
    root.chmod(0o755)
    logs = build(root)
    _world_readable(root)
    cases = [c for c in CASES if as_user == "nobody" or not c.needs_non_root]
    for case in CASES:  # lock what must be unreadable, now that the rest is readable
        if case.needs_non_root:
            _lock(logs / case.name)
    totals = Totals(inputs=len(cases))
    start = time.monotonic()
    reports: dict[str, str] = {}
    outputs = root / "reports"
    outputs.mkdir()
    outputs.chmod(0o777)  # the check writes here as nobody
    for fmt in FORMATS:
        out = outputs / f"report.{fmt}"
        code, stderr, peak = _check(root, fmt, as_user, out, timeout)
        totals.peak_mib = max(totals.peak_mib, peak)
        if code is None:
            totals.hangs += 1
            totals.problems.append(f"{fmt}: still running after {timeout:.0f} s")
            continue
        report = out.read_bytes().decode("utf-8") if out.exists() else ""
        reports[fmt] = report
        if "Traceback" in stderr + report:
            totals.tracebacks += 1
            totals.problems.append(f"{fmt}: a traceback: {stderr[-500:]}")
        if code != 2:
            totals.problems.append(f"{fmt}: exit {code}, not 2: {stderr[-300:]}")
        totals.problems += _inert(fmt, report)
    totals.seconds = time.monotonic() - start
    if reports.get("json"):
        totals.clean = _count_clean(json.loads(reports["json"]), cases, totals.problems)
    if reports.get("junit"):
        import xml.etree.ElementTree as ET

        ET.fromstring(reports["junit"])
    if reports.get("sarif"):
        json.loads(reports["sarif"])
    return totals


def _lock(path: Path) -> None:
    if path.name == "locked-meta":
        (path / "meta.json").chmod(0o000)
    else:
        path.chmod(0o000)


def _inert(fmt: str, report: str) -> list[str]:
    """What in a report a terminal or a GitHub runner would act on."""
    problems = []
    for bad in ("\x1b", "\x07", "\x9b", "\r", "\u202e"):
        if bad in report:
            problems.append(f"{fmt}: raw {bad!r} in the report")
    for line in report.split("\n"):
        command = line.lstrip().startswith("::") or "##[" in line
        if command and not (fmt == "github" and re.match(r"^::(error|warning|notice) ", line)):
            problems.append(f"{fmt}: a workflow command: {line[:120]!r}")
    return problems


def _shown(name: str) -> str:
    from runlint.report.escape import json as json_safe

    return json_safe(name)


def _count_clean(doc: dict, cases: list[Case], problems: list[str]) -> int:  # type: ignore[type-arg]
    """How many cases got exactly the one clean line (or clean check) they should."""
    runs = doc["runs"]
    notes = doc["summary"]["notes"]
    passed = doc["summary"]["passed_over"]
    clean = 0
    for name in HEALTHY_RUNS:
        entry = [r for r in runs if r["path"].endswith("/" + name)]
        if len(entry) != 1 or entry[0]["status"] != "ok":
            problems.append(f"healthy run {name} not checked: {entry}")
    for case in cases:
        tail = "/" + _shown(case.name)
        mine = [r for r in runs if r["path"].endswith(tail) or r["path"].endswith(tail + "/run")]
        if case.name == "locked-folder":
            mine = [r for r in runs if tail in r["path"]]
        mine_notes = [n["note"] for n in notes if tail in n["run"]]
        mine_passed = [
            p["reason"] for p in passed if p["path"].endswith(tail) or tail + "/" in p["path"]
        ]
        codes = {f["code"] for f in doc["findings"] if tail in f["run"]}
        lines: list[str] = []
        ok = False
        if case.expect == "error":
            lines = [r["error"] for r in mine if r["status"] == "error"]
            ok = len(lines) == 1 and case.says in lines[0]
        elif case.expect == "note":
            lines = mine_notes
            ok = (
                len(mine) == 1
                and mine[0]["status"] == "ok"
                and len(lines) == 1
                and case.says in lines[0]
            )
        elif case.expect == "passed":
            lines = mine_passed
            ok = len(lines) >= 1 and all(case.says in reason for reason in lines) and not mine
        else:
            ok = len(mine) == 1 and mine[0]["status"] in ("ok", "incomplete")
        ok = ok and all("\n" not in line and len(line) < 400 for line in lines)
        for want in case.findings:
            present = want[1:] in codes
            ok = ok and (present if want[0] == "+" else not present)
        if ok:
            clean += 1
        else:
            problems.append(
                f"{case.name!r}: expected {case.expect} {case.says!r} {case.findings}, got "
                f"runs={mine} notes={mine_notes} passed={mine_passed} findings={sorted(codes)}"
            )
    return clean


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="runlint-hostile-"))
    try:
        totals = run_suite(root)
    finally:
        for folder, dirs, _ in os.walk(root):
            for d in dirs:
                os.chmod(os.path.join(folder, d), 0o755)
        shutil.rmtree(root, ignore_errors=True)
    print(totals.line(), f"({totals.seconds:.0f} s for {len(FORMATS)} formats)")
    for problem in totals.problems:
        print("  " + problem)


if __name__ == "__main__":
    main()
