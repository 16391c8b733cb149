"""Who may record into a run directory, and what a new recording does with what it finds.

A rank's recording owns ``logdir`` for that rank from ``start`` to ``close``: it holds the
rank's lock (``runlint.recorder.lock``), so a second writer of the same rank (another process,
another job, a second ``runlint.record`` in the same process) is refused instead of mixing its
steps into the run. Under ``torch.distributed`` the ranks of one job lock different files and
so share the directory, as they always did; two jobs collide on rank 0.

With the lock taken, a directory that already holds this rank's data (a finished run, or one
that was killed) is refused too unless the options say what to do: ``overwrite=True`` deletes
it, ``resume=True`` continues it (see ``prepare_resume``). ``on_conflict="new"`` records into
the first free sibling ``<logdir>.1``, ``<logdir>.2``, ... instead of refusing.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from runlint.recorder.lock import LockHeld, RunLock, describe_owner
from runlint.schema.layout import (
    FINDINGS_FILE,
    META_FILE,
    PARTS_DIR,
    committed,
    flush_tables,
    lock_name,
    parse_compact,
    parse_part,
    part_name,
)

__all__ = ["CONFLICT_POLICIES", "Claim", "RunExistsError", "claim"]

CONFLICT_POLICIES = ("error", "new")
_MAX_SIBLINGS = 1000


class RunExistsError(FileExistsError):
    """``logdir`` is being recorded by another writer, or holds a run that the options do not
    say to resume or overwrite. ``reason`` is ``"locked"``, ``"finished"`` or ``"stopped"``;
    ``owner`` (for ``"locked"``) what the other writer's lock file says."""

    def __init__(
        self, message: str, path: Path, reason: str, owner: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason
        self.owner = owner or {}


@dataclass
class Claim:
    """A rank's hold on a run directory: where it records, its lock, and where it starts."""

    root: Path
    lock: RunLock
    resumed: bool = False
    step: int = 0  # the first step to record
    epoch: int = 0
    seq: int = 0  # the first part number to write
    meta: dict[str, Any] = field(default_factory=dict)  # meta.json of the run resumed (rank 0)


def claim(
    root: Path,
    rank: int,
    world_size: int,
    *,
    resume: bool = False,
    overwrite: bool = False,
    on_conflict: str = "error",
) -> Claim:
    """Lock ``root`` for ``rank`` and make it ready to record into (see the module's docstring);
    raises ``RunExistsError``, or ``OSError`` when the directory cannot be written."""
    if on_conflict not in CONFLICT_POLICIES:
        raise ValueError(f"on_conflict must be one of {CONFLICT_POLICIES}, not {on_conflict!r}")
    if resume and overwrite:
        raise ValueError("resume=True and overwrite=True contradict each other: pass one")
    if on_conflict == "new" and world_size > 1:
        return _claim_distributed(root, rank, world_size, resume=resume, overwrite=overwrite)
    return _claim_here(root, rank, world_size, resume, overwrite, on_conflict)


def _claim_here(
    root: Path, rank: int, world_size: int, resume: bool, overwrite: bool, on_conflict: str
) -> Claim:
    outcome = _try(root, rank, world_size, resume=resume, overwrite=overwrite)
    if isinstance(outcome, Claim):
        return outcome
    if on_conflict == "error":
        raise outcome
    return _sibling(root, rank, world_size)


def _sibling(root: Path, rank: int, world_size: int) -> Claim:
    for i in range(1, _MAX_SIBLINGS + 1):
        outcome = _try(root.with_name(f"{root.name}.{i}"), rank, world_size)
        if isinstance(outcome, Claim):
            return outcome
    raise RunExistsError(
        f"runlint: {root} and its siblings {root.name}.1 ... {root.name}.{_MAX_SIBLINGS} are "
        "all taken; record into another directory",
        root,
        "locked",
    )


def _claim_distributed(
    root: Path, rank: int, world_size: int, *, resume: bool, overwrite: bool
) -> Claim:
    """``on_conflict="new"`` for a job of several ranks: rank 0 chooses the directory and tells
    the others (a broadcast: every rank must call ``runlint.record``)."""
    import torch.distributed as dist

    chosen: list[Any] = [None, None]  # the directory, or the error rank 0 met
    mine: Claim | None = None
    error: Exception | None = None
    if rank == 0:
        try:
            mine = _claim_here(root, 0, world_size, resume, overwrite, "new")
            chosen[0] = str(mine.root)
        except Exception as exc:  # told to the other ranks before it is raised
            error = exc
            chosen[1] = f"{type(exc).__name__}: {exc}"
    dist.broadcast_object_list(chosen, src=0)
    if error is not None:
        raise error
    if chosen[1] is not None:
        raise RunExistsError(f"runlint: rank 0 could not claim {root}: {chosen[1]}", root, "locked")
    if mine is not None:
        return mine
    target = Path(chosen[0])
    same = target == root
    outcome = _try(target, rank, world_size, resume=resume and same, overwrite=overwrite and same)
    if isinstance(outcome, RunExistsError):
        raise outcome
    return outcome


def _try(
    root: Path, rank: int, world_size: int, *, resume: bool = False, overwrite: bool = False
) -> Claim | RunExistsError:
    """Lock ``root`` for ``rank`` and prepare it, or the reason it cannot be used."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        lock = RunLock.acquire(root / lock_name(rank))
    except LockHeld as held:
        return RunExistsError(
            f"runlint: {root} is being recorded by {describe_owner(held.owner)}; a second "
            "writer would mix its steps into that run. Record into another directory, or pass "
            f"on_conflict='new' to record into a new sibling ({root.name}.1, .2, ...)",
            root,
            "locked",
            held.owner,
        )
    try:
        found = _rank_files(root, rank)
        _remove_temporary(root, rank)
        if not found:
            return Claim(root, lock)
        if overwrite:
            _clear(root, rank, world_size)
            return Claim(root, lock)
        if resume:
            return prepare_resume(root, rank, lock)
        lock.release()
        return _refusal(root, rank)
    except BaseException:
        lock.release()
        raise


def _refusal(root: Path, rank: int) -> RunExistsError:
    doc = _read_meta(root)
    steps = doc.get("meta", {}).get("steps") if isinstance(doc.get("meta"), dict) else None
    counted = f" ({steps} steps)" if isinstance(steps, int) else ""
    options = (
        "pass resume=True to append to it, overwrite=True to replace it, or "
        f"on_conflict='new' to record into a new sibling ({root.name}.1, .2, ...)"
    )
    if doc.get("complete") is True:
        what, reason = f"already holds a finished run{counted}", "finished"
    elif doc:
        what = f"holds a run that was not closed{counted}: killed, or crashed"
        reason = "stopped"
    else:
        what, reason = f"holds rank {rank}'s tables of an earlier run", "stopped"
    return RunExistsError(f"runlint: {root} {what}; {options}", root, reason)


# -- what a rank has in a run directory ----------------------------------------------------------
def _rank_files(root: Path, rank: int) -> list[Path]:
    """This rank's tables and parts (and ``meta.json`` for rank 0)."""
    found = [p for p in root.glob(f"*-r{rank}.parquet") if _compact_rank(p) == rank]
    parts = root / PARTS_DIR
    if parts.is_dir():
        found += [p for p in parts.glob(f"*-r{rank}-*.parquet") if _part_rank(p) == rank]
    if rank == 0 and (root / META_FILE).exists():
        found.append(root / META_FILE)
    return found


def _compact_rank(path: Path) -> int | None:
    parsed = parse_compact(path.name)
    return parsed[1] if parsed else None


def _part_rank(path: Path) -> int | None:
    parsed = parse_part(path.name)
    return parsed[1] if parsed else None


def _remove_temporary(root: Path, rank: int) -> None:
    """Half-written files a killed writer of this rank left (``.<name>.<pid>.tmp``)."""
    names = [f".*-r{rank}.parquet.*.tmp"]
    patterns = [(root, n) for n in names] + [(root / PARTS_DIR, f".*-r{rank}-*.parquet.*.tmp")]
    if rank == 0:
        patterns.append((root, f".{META_FILE}.*.tmp"))
    for folder, pattern in patterns:
        if folder.is_dir():
            for path in folder.glob(pattern):
                with contextlib.suppress(OSError):
                    path.unlink()


def _clear(root: Path, rank: int, world_size: int) -> None:
    """``overwrite=True``: delete this rank's files; rank 0 also ``meta.json``, the live check's
    ``findings.jsonl`` and the files of
    ranks this job does not have (an earlier, larger job's), unless one of them is recording."""
    if rank == 0:
        for name in (META_FILE, FINDINGS_FILE):
            with contextlib.suppress(FileNotFoundError):
                (root / name).unlink()
    for path in _rank_files(root, rank):
        path.unlink()
    if rank != 0:
        return
    others = {_compact_rank(p) for p in root.glob("*.parquet")}
    if (root / PARTS_DIR).is_dir():
        others |= {_part_rank(p) for p in (root / PARTS_DIR).glob("*.parquet")}
    for other in sorted(r for r in others if r is not None and r >= world_size):
        try:
            lock = RunLock.acquire(root / lock_name(other))
        except LockHeld:
            continue
        try:
            for path in _rank_files(root, other):
                path.unlink()
        finally:
            lock.release()


def prepare_resume(root: Path, rank: int, lock: RunLock) -> Claim:
    """``resume=True``: make this rank's data a run that new flushes extend.

    Parts that a compacted file already holds and flushes that a kill left incomplete are
    deleted; the compacted files (of a run that was closed) become parts again, so that the new
    parts are read with them, and close compacts everything anew. Recording goes on at the step
    after the last one recorded, at the next epoch, with part numbers after the last.
    """
    parts_dir = root / PARTS_DIR
    parts_dir.mkdir(exist_ok=True)
    compacted = {}
    for path in root.glob(f"*-r{rank}.parquet"):
        parsed = parse_compact(path.name)
        if parsed and parsed[1] == rank:
            compacted[parsed[0]] = path
    flushes: dict[tuple[int, int], dict[str, Path]] = {}
    for path in parts_dir.glob(f"*-r{rank}-*.parquet"):
        part = parse_part(path.name)
        if part is None or part[1] != rank:
            continue
        if part[0] in compacted:  # merged into the compacted file already
            path.unlink()
        else:
            flushes.setdefault((rank, part[2]), {})[part[0]] = path
    done = committed(
        flushes, {(t, rank) for t in compacted}, lambda p: flush_tables(_schema_meta(p))
    )
    for key in [k for k in flushes if k not in done]:
        for path in flushes.pop(key).values():
            path.unlink()
    seq = max((s for _, s in flushes), default=-1) + 1
    if compacted:
        for table, path in compacted.items():
            os.replace(path, parts_dir / part_name(table, rank, seq))
        seq += 1
    step = epoch = -1
    for path in parts_dir.glob(f"*-r{rank}-*.parquet"):
        part = parse_part(path.name)
        if part is None or part[1] != rank:
            continue
        if part[0] in ("steps", "groups"):
            step = max(step, _max(path, "step"))
        elif part[0] == "epochs":
            epoch = max(epoch, _max(path, "epoch"))
    meta = _read_meta(root) if rank == 0 else {}
    return Claim(root, lock, resumed=True, step=step + 1, epoch=epoch + 1, seq=seq, meta=meta)


def _schema_meta(path: Path) -> dict[bytes, bytes] | None:
    return pq.read_schema(path).metadata


def _max(path: Path, column: str) -> int:
    table = pq.read_table(path, columns=[column])
    if not table.num_rows:
        return -1
    value = table.column(column).to_numpy(zero_copy_only=False).max()
    return int(value) if value == value else -1


def _read_meta(root: Path) -> dict[str, Any]:
    try:
        doc = json.loads((root / META_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}
