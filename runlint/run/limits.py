"""Reading untrusted log folders within bounds: only regular files, never through a link out of
the checked tree, and per-run limits that keep a check's memory within a documented budget.

A log folder is untrusted input (a training job, or someone else, wrote it). Every file a run
is read from is opened here:

- only a **regular file** is read: a FIFO, socket or device named ``meta.json`` or
  ``steps-r0.parquet`` is one "not a regular file" line, never a read that blocks (the file is
  opened non-blocking and checked with ``fstat`` before a byte is read);
- a file reached through a **symbolic link out of the checked tree** is not read (when the
  check set its ``roots``);
- **sizes are checked before reading**: a metadata file (``meta.json``, ``config.json``,
  ``hparams.yaml``, a Parquet footer) over ``max_meta_bytes``, a foreign log file
  (``trainer_state.json``, ``metrics.csv``, an event file) over ``max_bytes``, and a run whose
  Parquet tables would hold more than ``max_rows`` rows in a table or ``max_bytes`` once decoded
  (estimated from the footers: rows × value width, before any row is read), or more than
  ``max_files`` files, is one "too large" line (``TooLarge``) naming the limit and its key.

The budget this buys: a run's tables take at most ``max_bytes`` decoded, and checking a run
takes at most about four times its decoded size on top of the ~0.12 GiB of a check's process
(measured: a run just under the default limit, 1M steps × 15 columns or 2M × 7, peaked at
0.45-0.55 GiB; the 0.6 MB zstd bomb that took 2.5 GiB is refused at 0.12 GiB). So a check
stays under about 0.15 GiB + 4 × ``max_bytes`` per process (0.65 GiB with the defaults;
``-j N`` runs N such processes). Raise the limits in ``[tool.runlint]`` (``max-rows``,
``max-bytes``, ``max-meta-bytes``, ``max-files``) for runs that are legitimately larger.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT",
    "Limits",
    "NotRegular",
    "TooLarge",
    "current",
    "decoded_bytes",
    "open_regular",
    "read_bytes",
    "read_text",
    "using",
]

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-run limits on what is read (``[tool.runlint]`` keys in kebab-case)."""

    #: rows of one table of a run (over all its files and ranks)
    max_rows: int = 2_000_000
    #: a run's tables decoded (estimated from the Parquet footers), or one foreign log file
    max_bytes: int = 128 * MiB
    #: one metadata file (meta.json, config.json, hparams.yaml) or one Parquet footer
    max_meta_bytes: int = 16 * MiB
    #: Parquet files of one run (compacted tables and flushed parts)
    max_files: int = 10_000
    #: the checked trees (resolved): a file whose real path lies outside them is not read;
    #: empty: no such check (a run loaded by ``load_run`` outside a check)
    roots: tuple[str, ...] = ()

    def with_roots(self, paths: Iterable[Path]) -> Limits:
        return replace(self, roots=tuple(os.path.realpath(p) for p in paths))


DEFAULT = Limits()
_current = DEFAULT


def current() -> Limits:
    """The limits reads are held to now."""
    return _current


@contextlib.contextmanager
def using(limits: Limits) -> Iterator[Limits]:
    """Hold reads to ``limits`` inside the block."""
    global _current
    before, _current = _current, limits
    try:
        yield limits
    finally:
        _current = before


class NotRegular(OSError):
    """A path that is not a regular file (a FIFO, device, socket, folder) or that leads out of
    the checked tree; the message says which, in a few words."""


class TooLarge(ValueError):
    """A file or a run over one of the ``Limits``; the message names the limit and its key."""


def _mib(n: int) -> str:
    return f"{n / MiB:.3g} MiB" if n >= MiB // 10 else f"{n} bytes"


def too_large(what: str, size: int, limit: int, key: str, unit: str = "bytes") -> TooLarge:
    """``steps table: too large (3,000,000 rows > 2,000,000; raise max-rows ...)``."""
    shown = f"{_mib(size)} > {_mib(limit)}" if unit == "bytes" else f"{size:,} {unit} > {limit:,}"
    return TooLarge(f"{what}: too large ({shown}; raise {key} in [tool.runlint] to read it)")


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def inside_roots(path: Path, limits: Limits | None = None) -> bool:
    """Whether ``path``'s real location lies in one of the checked trees (or none is set)."""
    roots = (limits or _current).roots
    if not roots:
        return True
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


@contextlib.contextmanager
def open_regular(path: Path, limit: int | None = None, key: str = "max-bytes") -> Iterator[Any]:
    """``path`` opened for binary reading, if it is a regular file inside the checked tree and
    at most ``limit`` bytes; ``NotRegular``/``TooLarge`` otherwise (``OSError`` as ``open``).

    Opened with ``O_NONBLOCK`` so that a FIFO does not wait for a writer; ``fstat`` then says
    what was opened, so the check cannot be raced by swapping the file after a ``stat``.
    """
    if not inside_roots(path):
        raise NotRegular("is a link out of the checked folder")
    mode = os.stat(path).st_mode  # a socket cannot even be opened: say what it is
    if not stat.S_ISREG(mode):
        raise NotRegular(f"is {_kind(mode)}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"is {_kind(info.st_mode)}, not a regular file")
        if limit is not None and info.st_size > limit:
            raise too_large(Path(path).name, info.st_size, limit, key)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = open(fd, "rb", closefd=True)  # noqa: SIM115  (closed below)
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_bytes(path: Path, limit: int | None = None, key: str = "max-bytes") -> bytes:
    """The bytes of a regular file within the checked tree, at most ``limit`` (default
    ``max_bytes``) of them; a file that grows past the limit while read is ``TooLarge`` too."""
    limit = _current.max_bytes if limit is None else limit
    with open_regular(path, limit, key) as handle:
        data: bytes = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large(Path(path).name, len(data), limit, key)
    return data


def read_text(path: Path, limit: int | None = None, key: str = "max-bytes") -> str:
    """``read_bytes`` decoded as UTF-8 (undecodable bytes replaced)."""
    return read_bytes(path, limit, key).decode("utf-8", errors="replace")


def read_meta_bytes(path: Path) -> bytes:
    """A metadata file's bytes, held to ``max_meta_bytes``."""
    return read_bytes(path, _current.max_meta_bytes, "max-meta-bytes")


# -- Parquet ---------------------------------------------------------------------------------------

#: bytes per value once decoded (pandas), by Parquet physical type; a string or binary value
#: is its bytes plus an 8-byte reference
_WIDTH = {
    "BOOLEAN": 1,
    "INT32": 4,
    "INT64": 8,
    "INT96": 12,
    "FLOAT": 4,
    "DOUBLE": 8,
    "BYTE_ARRAY": 8,
    "FIXED_LEN_BYTE_ARRAY": 8,
}


def footer_length(handle: Any) -> int:
    """The length of a Parquet file's footer (the 4 bytes before the trailing ``PAR1``)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    if size < 12:
        return 0
    handle.seek(size - 8)
    tail = handle.read(8)
    handle.seek(0)
    return int.from_bytes(tail[:4], "little") if tail[4:] == b"PAR1" else 0


def decoded_bytes(footer: Any) -> int:
    """An estimate, from a Parquet footer alone, of what its rows take once decoded: every
    value at its type's width (so a file of one value repeated a million times, which
    compresses to nothing, counts at its decoded size), strings at their encoded size plus a
    reference each."""
    total = 0
    for g in range(footer.num_row_groups):
        group = footer.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            values = max(int(column.num_values), 0)
            width = _WIDTH.get(str(column.physical_type), 8)
            total += values * width
            if str(column.physical_type).endswith("BYTE_ARRAY"):
                total += max(int(column.total_uncompressed_size), 0)
    return total


def check_tables(footers: dict[str, list[Any]], files: int, limits: Limits | None = None) -> None:
    """Raise ``TooLarge`` when a run's ``files`` Parquet files or its tables (the footers read
    so far, by table) exceed the limits."""
    limits = limits or _current
    if files > limits.max_files:
        raise too_large("Parquet files", files, limits.max_files, "max-files", unit="files")
    decoded = 0
    for table, metas in footers.items():
        rows = sum(int(m.num_rows) for m in metas)
        if rows > limits.max_rows:
            raise too_large(f"{table} table", rows, limits.max_rows, "max-rows", unit="rows")
        decoded += sum(decoded_bytes(m) for m in metas)
    if decoded > limits.max_bytes:
        raise too_large("tables decoded", decoded, limits.max_bytes, "max-bytes")
