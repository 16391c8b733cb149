"""The ``meta`` probe: the run's metadata (``meta.json``'s ``meta``; keys: ``runlint.schema.meta``).

What does not change while training (optimizer, parameters, modules, environment, schedules) is
taken once, at the start; what the user gave (``meta=``, ``update_meta``), what is inferred
(number of classes, batch size, each with its provenance) and the progress of the recording
are added each time the metadata is written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from runlint.recorder import kernels
from runlint.recorder.probes.base import Probe, Shared, first_tensor, meta_keys

__all__ = ["Meta"]

(
    _NUM_CLASSES,
    _BATCH_SIZE,
    _PROVENANCE,
    _OPTIMIZER,
    _PARAMS,
    _MODULES,
    _MODEL,
    _NUM_PARAMETERS,
    _NUM_TRAINABLE,
    _TORCH_VERSION,
    _DEVICE,
    _WORLD_SIZE,
    _TORCH_INITIAL_SEED,
    _RECORDER,
    _STEPS,
    _EPOCHS,
    _PROBES_OFF,
    _BYTES_WRITTEN,
) = meta_keys(
    "num_classes",
    "batch_size",
    "provenance",
    "optimizer",
    "params",
    "modules",
    "model",
    "num_parameters",
    "num_trainable",
    "torch_version",
    "device",
    "world_size",
    "torch_initial_seed",
    "recorder",
    "steps",
    "epochs",
    "probes_off",
    "bytes_written",
)

GIVEN = "given"
_RESUMED = "resumed"  # steps where the recording was resumed (``resume=True``)
#: How each inferable key is inferred (its provenance is ``"inferred: <how>"``).
_INFERRED = {
    _NUM_CLASSES: "out_features of the last Linear layer",
    _BATCH_SIZE: "first dimension of the model's first input",
}


class Meta(Probe):
    """Static metadata (taken at the start), given and inferred values, progress."""

    def __init__(
        self,
        shared: Shared,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        given: dict[str, Any],
        schedules: dict[str, int],
        world_size: int,
    ) -> None:
        super().__init__(shared, "meta")
        self.model = model
        self.optimizer = optimizer
        self.given = given  # ``meta=`` and ``update_meta``
        self.batch_size: int | None = None  # inferred from the first training input
        self._schedules = schedules
        self._world_size = world_size
        self._static: dict[str, Any] = {}
        self._previous: dict[str, Any] = {}  # the metadata of the run resumed
        self.resumed: list[int] = []  # the steps where recordings of this run resumed

    def resume(self, doc: dict[str, Any], step: int) -> None:
        """Continue the run whose ``meta.json`` is ``doc``: what it said about the start of the
        run (initial weight statistics, optimizer settings, seed, given values) stays."""
        previous = doc.get("meta")
        previous = previous if isinstance(previous, dict) else {}
        self._previous = previous
        before = previous.get(_RESUMED)
        self.resumed = [*(before if isinstance(before, list) else []), step]
        provenance = previous.get(_PROVENANCE)
        if isinstance(provenance, dict):
            for key, how in provenance.items():
                if how == GIVEN and key in previous and key not in self.given:
                    self.given[key] = previous[key]

    def take_static(self) -> None:
        """The parts of the metadata that do not change while training (one host sync)."""
        params = self.shared.params
        self._static = {
            _OPTIMIZER: _optimizer_meta(self.optimizer),
            _PARAMS: _params_meta(self.model, self.optimizer),
            _MODULES: [
                {"name": n, "type": type(m).__name__, "activation": kernels.activation_kind(m)}
                for n, m in self.model.named_modules()
                if n and not list(m.children())
            ],
            _MODEL: type(self.model).__name__,
            _NUM_PARAMETERS: sum(p.numel() for p in params),
            _NUM_TRAINABLE: sum(p.numel() for p in params if p.requires_grad),
            _TORCH_VERSION: torch.__version__,
            _DEVICE: str(params[0].device) if params else "cpu",
            _WORLD_SIZE: self._world_size,
            _TORCH_INITIAL_SEED: torch.initial_seed(),
            _RECORDER: dict(self._schedules),
        }
        if self._previous:
            self._keep_start(self._previous)

    def _keep_start(self, previous: dict[str, Any]) -> None:
        """On resume: the start of the run is the first recording's, where it still fits."""
        static = self._static
        old_params = previous.get(_PARAMS)
        if isinstance(old_params, list):
            old = {
                (p.get("name"), tuple(p.get("shape") or ())): p
                for p in old_params
                if isinstance(p, dict)
            }
            for param in static[_PARAMS]:
                first = old.get((param["name"], tuple(param["shape"])))
                if first is not None:
                    for key in ("init_std", "init_mean"):
                        if key in first:
                            param[key] = first[key]
        old_optimizer = previous.get(_OPTIMIZER)
        if (
            isinstance(old_optimizer, dict)
            and old_optimizer.get("class") == static[_OPTIMIZER]["class"]
        ):
            static[_OPTIMIZER] = old_optimizer
        if _TORCH_INITIAL_SEED in previous:
            static[_TORCH_INITIAL_SEED] = previous[_TORCH_INITIAL_SEED]

    def see_inputs(self, inputs: tuple[Any, ...]) -> None:
        """A training forward pass's inputs: the first tensor's first dimension is the batch
        size (the first time there is one)."""
        first = first_tensor(inputs)
        if first is not None and first.dim() > 0:
            self.batch_size = int(first.shape[0])

    def collect(
        self, *, steps: int, epochs: int, probes_off: dict[str, str], bytes_written: int
    ) -> dict[str, Any]:
        """The metadata as of now."""
        meta: dict[str, Any] = {}
        provenance: dict[str, str] = {}
        inferred: dict[str, Any] = {}
        if self.batch_size is not None:
            inferred[_BATCH_SIZE] = self.batch_size
        out_features = _last_linear_out(self.model)
        if out_features and out_features > 1:
            inferred[_NUM_CLASSES] = out_features
        for key in (_NUM_CLASSES, _BATCH_SIZE):
            if key in self.given:
                meta[key], provenance[key] = self.given[key], GIVEN
            elif key in inferred:
                meta[key], provenance[key] = inferred[key], f"inferred: {_INFERRED[key]}"
        for key, value in self.given.items():
            if key not in meta:
                meta[key], provenance[key] = value, GIVEN
        meta[_PROVENANCE] = provenance
        meta.update(self._static)
        meta[_STEPS] = steps
        meta[_EPOCHS] = epochs
        meta[_PROBES_OFF] = probes_off
        meta[_BYTES_WRITTEN] = bytes_written
        if self.resumed:
            meta[_RESUMED] = list(self.resumed)
        return meta


def _last_linear_out(model: nn.Module) -> int | None:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    return last.out_features if last is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 16 else f"tensor{list(value.shape)}"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def _optimizer_meta(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    groups = [
        {k: _jsonable(v) for k, v in g.items() if k != "params"} for g in optimizer.param_groups
    ]
    return {
        "class": type(optimizer).__name__,
        "defaults": {k: _jsonable(v) for k, v in optimizer.defaults.items()},
        "groups": groups,
    }


def _params_meta(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Names, shapes, roles and initial statistics of the parameters (one host sync, at start)."""
    group_of = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
    owners = {}
    for _mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            owners[id(p)] = (type(module).__name__, p_name)
    named = list(model.named_parameters())
    with torch.no_grad():
        stats = [
            torch.stack(
                [
                    p.float().std() if p.numel() > 1 else p.float().abs().sum() * 0,
                    p.float().mean(),
                ]
            ).to("cpu", non_blocking=True)
            for _, p in named
        ]
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        values = torch.stack(stats).tolist() if stats else []
    out = []
    for (name, p), (std, mean) in zip(named, values, strict=True):
        module_type, role = owners.get(id(p), ("", name.rsplit(".", 1)[-1]))
        shape = list(p.shape)
        fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else None
        out.append(
            {
                "name": name,
                "shape": shape,
                "numel": p.numel(),
                "dtype": str(p.dtype),
                "module_type": module_type,
                "role": role,
                "trainable": p.requires_grad,
                "in_optimizer": id(p) in group_of,
                "group": group_of.get(id(p)),
                "fan_in": fan_in,
                "init_std": std,
                "init_mean": mean,
            }
        )
    return out
