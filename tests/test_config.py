"""[tool.runlint]: found from the working directory, validated strictly, fuzzed for clean
errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_loader_synth import write_run

from runlint.check.config import ConfigError, find_config, load_config, parse_config
from runlint.check.rule import Severity


def test_found_by_walking_up_past_unrelated_pyprojects(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runlint]\nselect = ["RL1"]\n')
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    deep = tmp_path / "a" / "b" / "logs"
    deep.mkdir(parents=True)
    assert find_config(deep) == tmp_path / "pyproject.toml"
    assert load_config(find_config(deep)).select == ["RL1"]


def test_nearest_runlint_table_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runlint]\nselect = ["RL1"]\n')
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "pyproject.toml").write_text('[tool.runlint]\nignore = ["RL2"]\n')
    assert find_config(tmp_path / "a") == tmp_path / "a" / "pyproject.toml"


def test_runlint_toml_comes_before_pyproject_and_a_pyproject_without_the_table_is_passed(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runlint]\nselect = ["RL1"]\n')
    (tmp_path / "runlint.toml").write_text('select = ["RL2"]\n')
    assert find_config(tmp_path) == tmp_path / "runlint.toml"
    assert load_config(find_config(tmp_path)).select == ["RL2"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_config(tmp_path / "sub") == tmp_path / "runlint.toml"


def test_a_config_inside_a_run_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.runlint]\nselect = ["RL1"]\n')
    run = write_run(tmp_path / "logs" / "run-1", steps=10)
    (run / "pyproject.toml").write_text('[tool.runlint]\nignore = ["ALL"]\n')
    (run / "runlint.toml").write_text('ignore = ["ALL"]\n')
    (run / "plots").mkdir()
    (run / "plots" / "runlint.toml").write_text('ignore = ["ALL"]\n')
    assert find_config(run) == tmp_path / "pyproject.toml"
    assert find_config(run / "plots") == tmp_path / "pyproject.toml"
    hf = tmp_path / "hf-out"
    hf.mkdir()
    (hf / "trainer_state.json").write_text('{"log_history": []}')
    (hf / "runlint.toml").write_text('ignore = ["ALL"]\n')
    assert find_config(hf) == tmp_path / "pyproject.toml"


def test_all_keys_kebab_or_snake(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[tool.runlint]\n"
        'select = ["ALL"]\nignore = ["RL203", "dead-relu"]\nfail_on = "error"\n'
        "exit-zero = true\nnum-classes = 10\nbatch_size = 64\nloss = 'mse'\n"
        '[tool.runlint.RL401]\nseverity = "error"\nmax-ratio = 0.05\n'
    )
    cfg = load_config(path)
    assert cfg.select == ["ALL"] and cfg.ignore == ["RL203", "dead-relu"]
    assert cfg.fail_on is Severity.ERROR and cfg.exit_zero is True
    assert cfg.meta == {"num_classes": 10, "batch_size": 64, "loss": "mse"}
    assert cfg.rules == {"RL401": {"severity": "error", "max_ratio": 0.05}}


def test_plain_toml_file_via_config_flag(tmp_path: Path) -> None:
    path = tmp_path / "runlint.toml"
    path.write_text('fail-on = "info"\n')
    assert load_config(path).fail_on is Severity.INFO


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('selct = ["RL1"]', "unknown key 'selct'.*did you mean 'select'"),
        ('fail-on = "errror"', "did you mean 'error'"),
        ("exit-zero = 1", "exit-zero must be true or false"),
        ("num-classes = 0", "num-classes must be a positive integer"),
        ("select = [1]", "select must be a list of strings"),
        ("[tool.runlint.rl401]\nx = 1", "did you mean 'RL401'"),
        ("RL401 = 3", "RL401 must be a table"),
        ("select = [", "invalid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "pyproject.toml"
    body = text if text.startswith("[") else f"[tool.runlint]\n{text}\n"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


_toml_values = st.recursive(
    st.none().filter(lambda _: False)
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
_keys = st.sampled_from(
    ["select", "ignore", "fail-on", "exit_zero", "num-classes", "batch-size", "loss", "RL101", "x"]
) | st.text(max_size=8)


@settings(deadline=None)
@given(st.dictionaries(_keys, _toml_values, max_size=5))
def test_parser_accepts_or_raises_config_error(table: dict[str, object]) -> None:
    try:
        cfg = parse_config(table)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert all(isinstance(s, str) for s in (cfg.select or []) + cfg.ignore)
    assert cfg.fail_on is None or isinstance(cfg.fail_on, Severity)
