"""Run metadata: every key ``meta.json`` may hold, its type, and the typed ``Setup`` rules read.

``meta`` is open (anything given in ``meta=`` is kept), but the keys listed here have one
meaning and one type. ``parse_setup`` turns the raw dict into a ``Setup``; a known key whose
value has the wrong shape is left out of it and named in ``Setup.problems`` (one line for the
run), so a rule never meets garbage.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "META",
    "MetaKey",
    "ModuleInfo",
    "OptimizerInfo",
    "ParamInfo",
    "Setup",
    "as_number",
    "flag_keys",
    "parse_setup",
]


class MetaValueError(ValueError):
    """A metadata value of the wrong shape; the message says what was expected."""


# -- value parsers: raw JSON value -> typed value, or MetaValueError ----------------------------


def _int(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MetaValueError(f"expected an integer, got {_shape(value)}")
        if isinstance(value, float) and not value.is_integer():
            raise MetaValueError(f"expected an integer, got {value!r}")
        if value < minimum:
            raise MetaValueError(f"expected an integer ≥ {minimum}, got {value!r}")
        return int(value)

    return parse


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MetaValueError(f"expected a finite number, got {_shape(value)}")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise MetaValueError(f"expected a non-empty string, got {_shape(value)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise MetaValueError(f"expected true or false, got {_shape(value)}")
    return value


def _object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MetaValueError(f"expected an object, got {_shape(value)}")
    return value


def _any(value: Any) -> Any:
    return value


def _shape(value: Any) -> str:
    if value is None:
        return "null"
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return kind.get(type(value), f"{type(value).__name__} {value!r}"[:60])


@dataclass(frozen=True)
class ParamInfo:
    """One parameter as recorded at the start (``meta.params``)."""

    name: str
    shape: tuple[int, ...] | None = None
    numel: int | None = None
    dtype: str = ""
    module_type: str = ""
    role: str = ""
    trainable: bool = True
    in_optimizer: bool = True
    group: int | None = None
    fan_in: int | None = None
    init_std: float | None = None
    init_mean: float | None = None


@dataclass(frozen=True)
class ModuleInfo:
    """One leaf module (``meta.modules``): its name, class and activation kind."""

    name: str
    type: str = ""
    activation: str | None = None


@dataclass(frozen=True)
class OptimizerInfo:
    """The optimizer (``meta.optimizer``): its class, defaults and param groups at the start."""

    cls: str
    defaults: Mapping[str, Any]
    groups: tuple[Mapping[str, Any], ...]

    @property
    def settings(self) -> tuple[Mapping[str, Any], ...]:
        """The param groups' settings, or the defaults when no group was recorded."""
        return self.groups or (self.defaults,)


def as_number(value: Any) -> float | None:
    """A setting's value as a float (``None`` when absent or not a plain number)."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _optional(kind: type, value: Any) -> Any:
    if value is None:
        return None
    if kind is float:
        return _float(value)
    if kind is int:
        return _int(0)(value)
    if kind is str:
        if not isinstance(value, str):
            raise MetaValueError(f"expected a string, got {_shape(value)}")
        return value
    raise TypeError(kind)


def _objects(value: Any) -> list[dict[str, Any]]:
    """A list of JSON objects, or ``MetaValueError`` naming the first item that is not one."""
    if not isinstance(value, list):
        raise MetaValueError(f"expected a list of objects, got {_shape(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise MetaValueError(f"item {i} is {_shape(item)}, not an object")
    return value


def _params(value: Any) -> tuple[ParamInfo, ...]:
    out = []
    for i, item in enumerate(_objects(value)):
        try:
            shape = item.get("shape")
            if shape is not None and not (
                isinstance(shape, list) and all(_is_int(s) and s >= 0 for s in shape)
            ):
                raise MetaValueError(f"shape is {_shape(shape)}, not a list of sizes")
            name = item.get("name", "")
            out.append(
                ParamInfo(
                    name=str(name),
                    shape=tuple(int(s) for s in shape) if shape is not None else None,
                    numel=_optional(int, item.get("numel")),
                    dtype=str(item.get("dtype") or ""),
                    module_type=str(item.get("module_type") or ""),
                    role=str(item.get("role") or str(name).rsplit(".", 1)[-1]),
                    trainable=item.get("trainable", True) is not False,
                    in_optimizer=item.get("in_optimizer", True) is not False,
                    group=_optional(int, item.get("group")),
                    fan_in=_optional(int, item.get("fan_in")),
                    init_std=_optional(float, item.get("init_std")),
                    init_mean=_optional(float, item.get("init_mean")),
                )
            )
        except MetaValueError as exc:
            raise MetaValueError(f"item {i}: {exc}") from None
    return tuple(out)


def _modules(value: Any) -> tuple[ModuleInfo, ...]:
    out = []
    for item in _objects(value):
        activation = item.get("activation")
        out.append(
            ModuleInfo(
                name=str(item.get("name", "")),
                type=str(item.get("type") or ""),
                activation=str(activation) if activation is not None else None,
            )
        )
    return tuple(out)


def _optimizer(value: Any) -> OptimizerInfo:
    doc = _object(value)
    defaults = doc.get("defaults") or {}
    groups = doc.get("groups") or []
    if not isinstance(defaults, dict):
        raise MetaValueError(f"defaults is {_shape(defaults)}, not an object")
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise MetaValueError("groups is not a list of objects")
    return OptimizerInfo(str(doc.get("class") or ""), defaults, tuple(groups))


def _frozen(value: Any) -> bool | tuple[str, ...]:
    """``true`` (the whole model) or parameter-name prefixes (a string or a list)."""
    if value is True or value is False:
        return value
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetaValueError(f"expected true or a list of name prefixes, got {_shape(value)}")
    return tuple(v.rstrip(".") for v in value if v)


def _provenance(value: Any) -> Mapping[str, str]:
    doc = _object(value)
    return {str(k): str(v) for k, v in doc.items()}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class MetaKey:
    """One known key of ``meta``: its type (as documented), meaning, and parser.

    ``flag`` is the help text when a user may supply the value for runs that lack it
    (``--num-classes`` on the command line, ``num-classes`` in ``[tool.runlint]``).
    """

    name: str
    type: str
    doc: str
    parse: Callable[[Any], Any] = _any
    flag: str = ""


META: dict[str, MetaKey] = {
    k.name: k
    for k in (
        MetaKey(
            "num_classes",
            "int ≥ 1",
            "number of classes: from `meta=` or inferred (the last `Linear`'s `out_features`)",
            _int(1),
            flag="Number of classes, for runs that lack it.",
        ),
        MetaKey(
            "batch_size",
            "int ≥ 1",
            "examples per optimizer step: from `meta=` or inferred (first dim of the first input)",
            _int(1),
            flag="Batch size, for runs that lack it.",
        ),
        MetaKey(
            "loss",
            "string",
            "the loss function (`cross_entropy`, `nll`, `bce`, `mse`, `multi_margin`, ...)",
            _text,
            flag="Loss function (e.g. cross_entropy, mse), for runs that lack it.",
        ),
        MetaKey("label_smoothing", "float", "label smoothing of the cross-entropy", _float),
        MetaKey(
            "provenance",
            "object",
            'per key: `"given"`, `"inferred: <how>"`, `"configured"` or `"imported"`',
            _provenance,
        ),
        MetaKey(
            "optimizer",
            "object",
            "`class`, `defaults`, `groups` (hyperparameters per param group at the start)",
            _optimizer,
        ),
        MetaKey(
            "params",
            "list",
            "per parameter: `name, shape, numel, dtype, module_type, role, trainable, "
            "in_optimizer, group, fan_in, init_std, init_mean`",
            _params,
        ),
        MetaKey(
            "modules", "list", "leaf modules: `name, type, activation` (kind or null)", _modules
        ),
        MetaKey("model", "string", "the model's class name"),
        MetaKey("num_parameters", "int", "parameter count"),
        MetaKey("num_trainable", "int", "trainable parameter count"),
        MetaKey("torch_version", "string", "torch version"),
        MetaKey("device", "string", "device of the first parameter"),
        MetaKey("world_size", "int", "`torch.distributed` world size (1 alone)"),
        MetaKey("torch_initial_seed", "int", "`torch.initial_seed()`"),
        MetaKey(
            "recorder",
            "object",
            "schedules used: `stats_every, hist_every, weights_every, flush_every, max_elems`",
        ),
        MetaKey("steps", "int", "optimizer steps recorded so far (updated at each flush)"),
        MetaKey("epochs", "int", "epochs recorded so far (updated at each flush)"),
        MetaKey("probes_off", "object", "probe → the error that switched it off"),
        MetaKey("bytes_written", "int", "bytes of part files written"),
        MetaKey(
            "summary",
            "object",
            "imported logs: test metrics and end-of-run summaries (name → value), kept apart "
            "from the curves",
        ),
        MetaKey(
            "frozen",
            "true or list",
            "parameters frozen on purpose: `true` (all) or name prefixes; RL404/RL703 skip them",
            _frozen,
        ),
        MetaKey(
            "resumed",
            "list",
            "steps at which a recording resumed this run (`resume=True`); absent if none",
        ),
        MetaKey(
            "stopped",
            "object",
            "the live check asked training to stop (`stop_on`): `step` (steps done when it "
            "asked), `codes`, `reason` (one line), `time`, `policy`; absent if it never did",
            _object,
        ),
        MetaKey(
            "first_loss_is_average",
            "bool",
            "the first logged loss already averages several steps (imported logs)",
            _bool,
        ),
        MetaKey(
            "loss_logging_interval",
            "int ≥ 1",
            "steps each logged loss averages (Hugging Face `logging_steps`)",
            _int(1),
        ),
    )
}


def flag_keys() -> list[MetaKey]:
    """The keys a user may supply for runs that lack them (command-line flags, config keys)."""
    return [k for k in META.values() if k.flag]


@dataclass(frozen=True)
class Setup:
    """What the metadata says about the run, typed: ``None`` (or empty) where it is not known.

    ``provenance`` tells for each key whether it was given, inferred, configured or imported;
    ``problems`` names each known key whose value could not be read.
    """

    num_classes: int | None = None
    batch_size: int | None = None
    loss: str | None = None  # lower case
    label_smoothing: float | None = None
    optimizer: OptimizerInfo | None = None
    params: tuple[ParamInfo, ...] = ()
    modules: tuple[ModuleInfo, ...] = ()
    frozen: bool | tuple[str, ...] = False
    first_loss_is_average: bool = False
    loss_logging_interval: int = 1
    provenance: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    @property
    def optimizer_class(self) -> str:
        """The optimizer's class name, or ``""`` when not recorded."""
        return self.optimizer.cls if self.optimizer is not None else ""

    def given(self, key: str) -> bool:
        """Whether the value of ``key`` came from the user (``meta=``, a flag or the config)
        rather than from a guess runlint made."""
        how = self.provenance.get(key, "given")
        return not how.startswith("inferred")

    def is_frozen(self, param: str) -> bool:
        """Whether ``param`` was declared frozen on purpose (``meta.frozen``)."""
        if self.frozen is True or self.frozen is False:
            return self.frozen
        return any(param == p or param.startswith(p + ".") for p in self.frozen)


_SETUP_KEYS = tuple(name for name in Setup.__dataclass_fields__ if name != "problems")


def parse_setup(meta: Mapping[str, Any]) -> Setup:
    """The typed ``Setup`` of a raw ``meta`` dict; unreadable known keys go to ``problems``."""
    values: dict[str, Any] = {}
    problems = []
    for name in _SETUP_KEYS:
        raw = meta.get(name)
        if raw is None:
            continue
        try:
            value = META[name].parse(raw)
        except MetaValueError as exc:
            problems.append(f"meta.{name} is unreadable ({exc})")
            continue
        values[name] = value.lower() if name == "loss" else value
    return Setup(**values, problems=tuple(problems))
