"""The ``groups`` probe: the optimizer's param-group settings (lr, momentum, betas, weight decay,
...) at every optimizer step, read from ``optimizer.param_groups`` so that schedulers are seen."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from runlint.recorder.probes.base import Probe, Shared, names
from runlint.recorder.stash import Table
from runlint.schema.tables import GROUP_SETTINGS, GROUPS, RANK, STEP

__all__ = ["GroupLog", "Groups"]

_GROUP, _BETA1, _BETA2 = names(GROUPS, "group", "beta1", "beta2")
#: What is read of a param group: the settings, and ``betas`` (written as beta1 and beta2).
_BETAS = "betas"
_KEYS = (*GROUP_SETTINGS, _BETAS)


class GroupLog:
    """The settings at every step, stored where they change.

    ``steps`` has every recorded step; ``changes`` a row per group (``at``: index into
    ``steps``, ``group``) each time any setting changed, filled forward at the flush. A run
    whose settings hold still appends one number per step.
    """

    __slots__ = ("changes", "steps")

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.changes = Table("at", "group")

    @property
    def n(self) -> int:
        return len(self.steps)


class Groups(Probe):
    """Records every param group's settings at every optimizer step (its pre-hook)."""

    def __init__(self, shared: Shared) -> None:
        super().__init__(shared, GROUPS.name)
        self.log = GroupLog()
        # per param group at the last change: its size, keys, their getter and their values
        self._state: list[tuple[int, tuple[str, ...], Callable[..., Any], Any]] = []
        self._tensors = False  # a setting is a tensor: record every step

    def record(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """The settings of every param group, as they are now.

        They are stored again only when one of them is a different object than at the last
        change (schedulers assign new numbers) or is a tensor (it may change in place).
        """
        log = self.log
        at = len(log.steps)
        log.steps.append(step)
        groups = optimizer.param_groups
        state = self._state
        if log.changes.n and not self._tensors and len(state) == len(groups):
            for group, (size, _, get, last) in zip(groups, state, strict=True):
                if len(group) != size or not all(map(operator.is_, get(group), last)):
                    break
            else:
                return
        self._change(groups, at)

    def _change(self, groups: list[dict[str, Any]], at: int) -> None:
        """A row per group; reuses a group's keys and getter while its size holds."""
        table = self.log.changes
        stash = self.shared.stash
        previous = self._state
        state = self._state = []
        tensors = False
        for i, group in enumerate(groups):
            if i < len(previous) and previous[i][0] == len(group):  # same keys: a new value
                _, keys, get, _ = previous[i]
            else:
                keys = tuple(k for k in _KEYS if k in group)
                get = _getter(keys)
            values = get(group)
            state.append((len(group), keys, get, values))
            row = table.add(at, i)
            for key, value in zip(keys, values, strict=True):
                # settings are copied: they may change in place
                if key == _BETAS:
                    if isinstance(value, (tuple, list)) and len(value) == 2:
                        table.put(_BETA1, row, value[0], stash, copy=True)
                        table.put(_BETA2, row, value[1], stash, copy=True)
                        tensors |= isinstance(value[0], torch.Tensor)
                        tensors |= isinstance(value[1], torch.Tensor)
                else:
                    table.put(key, row, value, stash, copy=True)
                    tensors |= isinstance(value, torch.Tensor)
        self._tensors = tensors

    def take(self) -> GroupLog | None:
        log, self.log = self.log, GroupLog()
        return log if log.n else None

    def columns(
        self, rows: GroupLog, scalars: np.ndarray, vectors: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        """A row per step and group: each step takes the rows of the last change at or before
        it."""
        changes = rows.changes
        at = np.asarray(changes.fixed["at"], dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, at[1:] != at[:-1]])  # first row of each change
        sizes = np.diff(np.r_[starts, len(at)])
        latest = np.searchsorted(at[starts], np.arange(rows.n), side="right") - 1
        counts = sizes[latest]
        ends = np.cumsum(counts)
        source = np.repeat(starts[latest] - (ends - counts), counts) + np.arange(ends[-1])
        columns: dict[str, Any] = {
            STEP.name: np.repeat(np.asarray(rows.steps, dtype=np.int64), counts),
            RANK.name: np.full(len(source), self.shared.rank),
            _GROUP: np.asarray(changes.fixed["group"], dtype=np.int64)[source],
        }
        for key, values in changes.values.items():
            columns[key] = values.array(changes.n, scalars).take(pa.array(source))
        return {GROUPS.name: columns}


def _getter(keys: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function returning the values of ``keys`` in a dict as a tuple (C speed)."""
    if len(keys) == 1:
        key = keys[0]
        return lambda d: (d[key],)
    if not keys:
        return lambda d: ()
    return operator.itemgetter(*keys)
