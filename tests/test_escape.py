"""Strings from a log are neutralised per output format (``runlint.report.escape``): nothing a
log folder holds reaches a terminal raw or becomes a workflow command in a CI log."""

from __future__ import annotations

import io
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers_cli import invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from test_loader_synth import write_run

from runlint.report import escape

#: Any code point, surrogates included (what a file name decoded with surrogateescape holds).
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=40)
#: The nasty ones, often: controls, ESC sequences, bidi overrides, separators, surrogates.
NASTY = st.lists(
    st.sampled_from(
        [
            "\x1b[2J",
            "\x1b]8;;http://evil/\x1b\\",
            "\x1b]0;title\x07",
            "\n::warning title=x::y",
            "\r::error::z",
            "##[error]legacy",
            "::",
            "\u202e",
            "\u2028",
            "\x85",
            "\x9b31m",
            "\udcff",
            "\ud800",
            "\ufffe",
            "%0A",
            ",:",
            "\t",
            "a",
            " ",
        ]
    ),
    max_size=8,
).map("".join)
HOSTILE = st.one_of(ANY_TEXT, NASTY)


def _runner_commands(output: str) -> list[str]:
    """The lines a GitHub runner would take as workflow commands (``::`` at the start after
    blanks, or ``##[`` anywhere); a bare CR ends a line for it."""
    lines = re.split(r"\r\n|\r|\n", output)
    return [ln for ln in lines if ln.lstrip().startswith("::") or "##[" in ln]


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_text_is_one_printable_line_that_encodes(value: str) -> None:
    out = escape.text(value)
    assert out.isprintable()
    out.encode("utf-8")
    assert _runner_commands(escape.guard_text("  " + out)) == []
    if value.isprintable():
        assert out == value  # ordinary names are left alone


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_github_data_and_properties_cannot_end_or_start_a_command(value: str) -> None:
    data = escape.github_data(value)
    prop = escape.github_property(value)
    for out in (data, prop):
        out.encode("utf-8")
        assert not set(out) & {"\r", "\n", "\x1b"}
        assert "\x00" not in out and out.replace("\r", "").isprintable()
    assert ":" not in prop and "," not in prop
    decoded = data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")
    assert decoded == escape.visible(value, keep="\r\n")
    line = f"::warning title={prop}::{data}"
    assert len(re.split(r"\r\n|\r|\n", line)) == 1


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_xml_text_is_valid_xml_1_0_and_round_trips(value: str) -> None:
    cleaned = escape.xml(value)
    root = ET.Element("suite", name=cleaned)
    root.text = cleaned
    document = escape.guard_xml(ET.tostring(root, encoding="unicode"))
    document.encode("utf-8")
    parsed = ET.fromstring(document)
    assert parsed.get("name") == cleaned and (parsed.text or "") == cleaned
    assert _runner_commands(document) == []


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_json_strings_encode_and_round_trip(value: str) -> None:
    cleaned = escape.json(value)
    document = escape.guard_json(json.dumps({"k": cleaned}, indent=2, ensure_ascii=False))
    document.encode("utf-8")
    assert document.replace("\n", "").isprintable()  # ESC, bidi, C1 written as \uXXXX
    assert json.loads(document) == {"k": cleaned}
    assert _runner_commands(document) == []
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert cleaned == value  # a string UTF-8 can hold is kept as it is


def test_visible_names_each_escape() -> None:
    assert escape.text("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert escape.text("x\n::warning::y") == "x\\n::warning::y"
    assert escape.text("\u202eabc") == "\\u202eabc"
    assert escape.text(os.fsdecode(b"bad\xffname")) == "bad\\xffname"
    assert escape.guard_text("  ::warning::x") == "  \\::warning::x"
    assert escape.guard_text("see ##[error]x") == "see ##\\[error]x"


def test_guarded_writer_guards_lines_split_across_writes() -> None:
    out = io.StringIO()
    writer = escape.GuardedWriter(out)
    writer.write("ok\n:")
    writer.write(":warning::x\n")
    writer.write("tail ##")
    writer.write("[x]")
    writer.flush()
    assert out.getvalue() == "ok\n\\::warning::x\ntail ##\\[x]"


HOSTILE_NAMES = [
    "x\n::warning title=injected::pwned",
    "esc\x1b[2Jclear\x1b]0;title\x07",
    "link\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "legacy ##[error]pwned",
    "cr\r::error::pwned",
    "bidi\u202egnp.exe",
]


@pytest.fixture(scope="module")
def hostile_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile") / "logs"
    nan = np.r_[np.linspace(2.3, 1.0, 30), np.full(10, np.nan)]
    for name in HOSTILE_NAMES:
        write_run(root / name, steps=40, loss=nan, meta={"model": "m\x1b[31m::x"})
    write_run(root / "tmp-bytes", steps=40, loss=nan)
    os.rename(os.fsencode(root / "tmp-bytes"), os.fsencode(root) + b"/bytes\xff\xfename")
    return root


@pytest.mark.parametrize("fmt", ["text", "github", "json", "sarif", "junit"])
def test_hostile_names_reach_no_report_raw(hostile_logs: Path, fmt: str, tmp_path: Path) -> None:
    target = tmp_path / f"report.{fmt}"
    result = invoke("check", str(hostile_logs), "--select", "RL103", "-f", fmt, "-o", str(target))
    assert "Traceback" not in result.output
    assert result.exit_code == 1, result.output
    raw = target.read_bytes()
    output = raw.decode("utf-8")  # valid UTF-8, whatever the names held
    for bad in ("\x1b", "\x07", "\u202e", "\r"):
        assert bad not in output
    commands = _runner_commands(output)
    if fmt == "github":  # only runlint's own annotations: one per run and finding
        assert len(commands) == len(HOSTILE_NAMES) + 1
        command = re.compile(r"^::error file=[^:,]*,title=RL103 non-finite-loss::")
        assert all(command.match(c) for c in commands)
    else:
        assert commands == []
    if fmt in ("json", "sarif"):
        json.loads(output)
    if fmt == "junit":
        suites = ET.fromstring(output).findall("testsuite")
        assert len(suites) == len(HOSTILE_NAMES) + 1
    if fmt == "text":
        assert "x\\n::warning title=injected::pwned" in output
        assert "bytes\\xff\\xfename" in output
