"""``[tool.runlint]`` configuration: found from the working directory, validated strictly.

Configuration belongs to the project, never to the data: it is found the way ruff finds its
own, walking up from the working directory (or given with ``--config``), and in each folder
``runlint.toml`` (or ``.runlint.toml``: its keys at the top level, or under ``[tool.runlint]``)
comes before a ``pyproject.toml`` with a ``[tool.runlint]`` table. Which paths are checked, and
in which order, never changes it (though a folder below a checked path is passed over). A
folder that is a run (a runlint run directory or a folder an importer reads), or lies inside
one, is passed over too: whoever writes the logs does not choose the rules that judge them.

```toml
[tool.runlint]
select = ["ALL"]            # codes, prefixes (RL4, RL40), names (dead-relu) or ALL
ignore = ["RL203"]
fail-on = "warning"         # info | warning | error
exit-zero = false
num-classes = 10            # metadata for runs that lack it: every key of
                            # runlint.schema.meta with a flag (batch-size, loss, ...)

[tool.runlint.RL401]        # one table per rule code: its options and its severity
severity = "error"
high = 0.05

[tool.runlint.sweep]        # runlint sweep: objective, direction, hyperparameters
objective = "val_loss"
```

Tables of the sweep family (``RL8xx``) and ``[tool.runlint.sweep]`` are kept apart
(``sweep_rules``, ``sweep``) and validated by ``runlint sweep``: ``runlint check`` never sees
them.

Keys may be written kebab-case or snake_case. Unknown keys are errors with a "did you mean"
hint; rule tables are checked against the rule catalog by ``runlint.engine``.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runlint.check.rule import Severity
from runlint.hints import suggest
from runlint.schema.meta import MetaKey, MetaValueError, flag_keys

if TYPE_CHECKING:
    from runlint.run.limits import Limits

__all__ = [
    "Config",
    "ConfigError",
    "find_config",
    "load_config",
    "meta_options",
    "meta_value",
    "meta_value_from_text",
]

CODE_RE = re.compile(r"^RL\d{3}$")
#: The code family of ``runlint sweep``'s rules (``runlint.sweep.rule``).
SWEEP_FAMILY = "RL8"

#: The per-run read limits (``runlint.run.limits.Limits``) and the unit each is counted in.
LIMIT_KEYS = {
    "max-rows": "rows",
    "max-bytes": "bytes",
    "max-meta-bytes": "bytes",
    "max-files": "files",
}
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
}

#: The keys of ``[tool.runlint]`` besides the metadata keys (``meta_options``) and rule tables.
SETTING_KEYS = (
    "select",
    "ignore",
    "exclude",
    "fail-on",
    "exit-zero",
    "allow-run-ignores",
    *LIMIT_KEYS,
)
#: Tables of ``[tool.runlint]`` besides the rule tables.
SETTING_TABLES = ("per-run-ignores",)


def meta_options() -> dict[str, MetaKey]:
    """Run metadata a user may supply for runs that lack it, by its kebab-case name: the
    ``[tool.runlint]`` key and (with ``--``) the ``runlint check`` flag. Generated from the
    schema's keys that have a ``flag`` (``runlint.schema.meta.flag_keys``), read each call."""
    return {kebab(key.name): key for key in flag_keys()}


def top_keys() -> tuple[str, ...]:
    """Every key ``[tool.runlint]`` accepts (rule tables aside)."""
    return (*SETTING_KEYS, *meta_options())


class ConfigError(Exception):
    """A configuration or usage error; the message is one line (exit code 2)."""


@dataclass
class Config:
    """Settings from ``[tool.runlint]``; ``None`` means "not set here"."""

    path: Path | None = None
    select: list[str] | None = None
    ignore: list[str] = field(default_factory=list)
    #: folder globs the walk leaves out (``--exclude`` adds to them)
    exclude: list[str] = field(default_factory=list)
    fail_on: Severity | None = None
    exit_zero: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the read limits set here (snake_case field names of ``Limits``)
    limits: dict[str, int] = field(default_factory=dict)
    #: run-name glob → rule selectors suppressed for the runs it matches
    per_run_ignores: dict[str, list[str]] = field(default_factory=dict)
    #: honour the ``.runlintignore`` files inside run directories
    allow_run_ignores: bool | None = None
    #: rule code → its table, keys normalized to snake_case (``severity`` included)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the sweep rules' tables (``RL8xx``), as ``rules``
    sweep_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``[tool.runlint.sweep]`` as written (``runlint sweep`` validates it)
    sweep: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"[tool.runlint] in {self.path}" if self.path else "[tool.runlint]"


def snake(key: str) -> str:
    return key.replace("-", "_")


def kebab(key: str) -> str:
    return key.replace("_", "-")


#: Config files looked for in each folder, in order (``pyproject.toml`` only with the table).
CONFIG_FILES = ("runlint.toml", ".runlint.toml", "pyproject.toml")


def find_config(start: Path | None = None, checked: Sequence[Path] = ()) -> Path | None:
    """The project's config file: the first of ``CONFIG_FILES`` in ``start`` (default: the
    working directory) or the nearest folder above it, passing over folders that are runs or
    lie inside one, or lie below a ``checked`` path (``config_folders``)."""
    for folder in config_folders(Path.cwd() if start is None else start, checked):
        for name in CONFIG_FILES:
            candidate = folder / name
            if not candidate.is_file():
                continue
            if name != "pyproject.toml" or "runlint" in _read_toml(candidate).get("tool", {}):
                return candidate
    return None


def config_folders(start: Path, checked: Sequence[Path] = ()) -> list[Path]:
    """``start`` and the folders above it where a config file may be read: neither a run nor
    inside one, nor below a checked path (a config file dropped into logs is data, not
    configuration; a checked path itself may be the project: ``runlint check .``)."""
    from runlint.run import importers
    from runlint.run.find import is_run_dir

    here = start.resolve() if start.exists() else Path.cwd().resolve()
    if not here.is_dir():
        here = here.parent
    chain = [here, *here.parents]
    runs = [is_run_dir(folder) or importers.kind(folder) is not None for folder in chain]
    trees = [p.resolve() for p in checked if p.exists()]
    # a folder is inside a run when it, or a folder above it, is one
    return [
        folder
        for i, folder in enumerate(chain)
        if not any(runs[i:]) and not any(tree in folder.parents for tree in trees)
    ]


def load_config(path: Path | None) -> Config:
    """Read and validate a config file: a ``pyproject.toml`` or a TOML file of runlint keys."""
    if path is None:
        return Config()
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    doc = _read_toml(path)
    tool = doc.get("tool", {})
    table = tool.get("runlint") if isinstance(tool, dict) and "runlint" in tool else None
    if table is None:  # runlint.toml: the keys at the top level
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
            target = config.sweep_rules if key.startswith(SWEEP_FAMILY) else config.rules
            target[key] = {snake(k): v for k, v in value.items()}
        elif key == "sweep" and isinstance(value, dict):
            config.sweep = dict(value)
        elif name in ("select", "ignore", "exclude"):
            setattr(config, name, _string_list(value, name, where))
        elif name == "fail-on":
            config.fail_on = parse_severity(value, f"{where}: fail-on")
        elif name == "per-run-ignores":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: per-run-ignores must be a table of globs")
            config.per_run_ignores = {
                str(glob): _string_list(tokens, f"per-run-ignores.{glob!r}", where)
                for glob, tokens in value.items()
            }
        elif name == "allow-run-ignores":
            if not isinstance(value, bool):
                raise ConfigError(
                    f"{where}: allow-run-ignores must be true or false, got {value!r}"
                )
            config.allow_run_ignores = value
        elif name in LIMIT_KEYS:
            config.limits[snake(name)] = parse_limit(value, LIMIT_KEYS[name], f"{where}: {name}")
        elif name == "exit-zero":
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: exit-zero must be true or false, got {value!r}")
            config.exit_zero = value
        elif name in (meta := meta_options()):
            meta_key = meta[name]
            config.meta[meta_key.name] = meta_value(meta_key, value, f"{where}: {name}")
        elif isinstance(value, dict):
            hint = f"; did you mean {key.upper()!r}?" if CODE_RE.match(key.upper()) else ""
            raise ConfigError(
                f"{where}: unknown table {key!r} (rule tables are named by code, like RL401)" + hint
            )
        else:
            raise ConfigError(
                f"{where}: unknown key {key!r}" + suggest(name, [*top_keys(), *SETTING_TABLES])
            )
    return config


#: How a message names a metadata type of the schema (``MetaKey.type``); others as written.
_TYPE_WORDS = {
    "int ≥ 1": "a positive integer",
    "int": "an integer",
    "float": "a finite number",
    "string": "a non-empty string",
    "bool": "true or false",
}


def describe_type(key: MetaKey) -> str:
    """``a positive integer`` for ``int ≥ 1``: the key's type as a message says it."""
    return _TYPE_WORDS.get(key.type, key.type)


def meta_value(key: MetaKey, value: Any, where: str) -> Any:
    """A metadata value from the config, checked (and normalized) by the schema's parser."""
    try:
        return key.parse(value)
    except (MetaValueError, TypeError, ValueError):
        raise ConfigError(f"{where} must be {describe_type(key)}, got {value!r}") from None


def meta_value_from_text(key: MetaKey, text: str) -> Any:
    """A metadata value from a command-line flag's text, checked by the schema's parser.

    The text is offered to the parser as an integer, a number, a boolean and a string, in
    that order, and the first the parser accepts is the value (``10`` is an int, ``mse`` a
    string). Raises ``ValueError`` saying what was expected.
    """
    candidates: list[Any] = []
    for convert in (int, float):
        with contextlib.suppress(ValueError):
            candidates.append(convert(text))
    if text.lower() in ("true", "false"):
        candidates.append(text.lower() == "true")
    candidates.append(text)
    for candidate in candidates:
        try:
            return key.parse(candidate)
        except (MetaValueError, TypeError, ValueError):
            continue
    raise ValueError(f"must be {describe_type(key)}, got {text!r}")


def parse_limit(value: Any, unit: str, where: str) -> int:
    """A positive count, or for bytes also a size such as ``"512 MiB"``; ``ConfigError`` else."""
    if isinstance(value, str) and unit == "bytes":
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        scale = _UNITS.get(match[2].lower()) if match else None
        if match and scale is not None:
            value = int(float(match[1]) * scale)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shape = (
            'a positive number of bytes or a size like "512 MiB"'
            if unit == "bytes"
            else f"a positive number of {unit}"
        )
        raise ConfigError(f"{where} must be {shape}, got {value!r}")
    return value


def limits_of(config: Config) -> Limits:
    """The read limits in force: the defaults with what the config sets."""
    from runlint.run.limits import Limits

    return Limits(**config.limits)  # type: ignore[arg-type]


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
