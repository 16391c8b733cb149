"""``[tool.runlint]`` configuration: found by walking up from the checked path, validated strictly.

```toml
[tool.runlint]
select = ["ALL"]            # codes, prefixes (RL4, RL40), names (dead-relu) or ALL
ignore = ["RL203"]
fail-on = "warning"         # info | warning | error
exit-zero = false
num-classes = 10            # for runs that lack it (imported logs); also batch-size, loss

[tool.runlint.RL401]        # one table per rule code: its options and its severity
severity = "error"
high = 0.05
```

Keys may be written kebab-case or snake_case. Unknown keys are errors with a "did you mean"
hint; rule tables are checked against the rule catalog by ``runlint.engine``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlint.check.rule import Severity
from runlint.hints import suggest

__all__ = ["Config", "ConfigError", "find_config", "load_config"]

CODE_RE = re.compile(r"^RL\d{3}$")

#: Run metadata a configuration (or the command line) may supply: key → (meta key, type).
META_KEYS: dict[str, tuple[str, type]] = {
    "num-classes": ("num_classes", int),
    "batch-size": ("batch_size", int),
    "loss": ("loss", str),
}
TOP_KEYS = ("select", "ignore", "fail-on", "exit-zero", *META_KEYS)


class ConfigError(Exception):
    """A configuration or usage error; the message is one line (exit code 2)."""


@dataclass
class Config:
    """Settings from ``[tool.runlint]``; ``None`` means "not set here"."""

    path: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    fail_on: Severity | None = None
    exit_zero: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: rule code → its table, keys normalized to snake_case (``severity`` included)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"[tool.runlint] in {self.path}" if self.path else "[tool.runlint]"


def snake(key: str) -> str:
    return key.replace("-", "_")


def kebab(key: str) -> str:
    return key.replace("_", "-")


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.runlint]`` table, walking up from ``start``."""
    here = Path.cwd() if start is None else start
    here = here.resolve() if here.exists() else Path.cwd().resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and "runlint" in _read_toml(candidate).get("tool", {}):
            return candidate
    return None


def load_config(path: Path | None) -> Config:
    """Read and validate a config file: a ``pyproject.toml`` or a TOML file of runlint keys."""
    if path is None:
        return Config()
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    doc = _read_toml(path)
    tool = doc.get("tool", {})
    table = tool.get("runlint") if isinstance(tool, dict) and "runlint" in tool else None
    if table is None:
        table = {} if path.name == "pyproject.toml" else doc
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.runlint] must be a table")
    return parse_config(table, path)


def parse_config(table: dict[str, Any], path: Path | None = None) -> Config:
    """Validate the keys of a ``[tool.runlint]`` table."""
    config = Config(path=path)
    where = config.where
    for key, value in table.items():
        name = kebab(key)
        if CODE_RE.match(key):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a table ([tool.runlint.{key}])")
            config.rules[key] = {snake(k): v for k, v in value.items()}
        elif name in ("select", "ignore"):
            setattr(config, name, _string_list(value, name, where))
        elif name == "fail-on":
            config.fail_on = parse_severity(value, f"{where}: fail-on")
        elif name == "exit-zero":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: exit-zero must be true or false, got {value!r}")
            config.exit_zero = value
        elif name in META_KEYS:
            meta_key, kind = META_KEYS[name]
            config.meta[meta_key] = check_meta(name, value, kind, where)
        elif isinstance(value, dict):
            hint = f"; did you mean {key.upper()!r}?" if CODE_RE.match(key.upper()) else ""
            raise ConfigError(
                f"{where}: unknown table {key!r} (rule tables are named by code, like RL401)" + hint
            )
        else:
            raise ConfigError(f"{where}: unknown key {key!r}" + suggest(name, TOP_KEYS))
    return config


def check_meta(name: str, value: Any, kind: type, where: str) -> Any:
    """A metadata override, type-checked (positive integers for counts)."""
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{where}: {name} must be a positive integer, got {value!r}")
    elif not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {name} must be a non-empty string, got {value!r}")
    return value


def parse_severity(value: Any, where: str) -> Severity:
    """A ``Severity`` from its name; a ``ConfigError`` otherwise."""
    names = [s.value for s in Severity]
    if isinstance(value, Severity):
        return value
    if not isinstance(value, str) or value.lower() not in names:
        hint = suggest(str(value).lower(), names)
        raise ConfigError(f"{where} must be one of {', '.join(names)}, got {value!r}{hint}")
    return Severity(value.lower())


def _string_list(value: Any, name: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {name} must be a list of strings, got {value!r}")
    return [v.strip() for v in value if v.strip()]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
