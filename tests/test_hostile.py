"""The hostile-input suite (issue 16): every class of hostile log folder, generated on the fly
(``hostile_inputs``), is one clean line in every format, with no traceback, no hang and bounded
memory; the readers take any bytes. (A recorder killed at random moments, during flushes too:
``tests/test_recorder_kill.py``.)"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
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
