"""Runs in object storage: ``s3://bucket/prefix`` and any other fsspec URL.

A URL given to ``runlint check`` or ``runlint sweep`` is listed once (``find_remote``: one
recursive listing, bounded by ``MAX_LISTED`` files), and its runs are found from the names in
that listing by the rules ``find_runs`` applies to local folders. Each run is a ``RemoteRun``:
its URL and the files the loaders read (``needed_files``: ``meta.json`` and the Parquet tables
of a runlint run, ``trainer_state.json`` and ``config.json`` of a Hugging Face Trainer folder,
``metrics.csv`` and ``hparams.yaml`` of a Lightning one, TensorBoard event files), never a
model checkpoint, a pickle or anything else stored beside them. ``local_copy`` fetches those
files into a temporary folder, the local loader reads them there, and the folder is deleted;
the engine reports the run under its URL.

fsspec (and s3fs for ``s3://``) come with the ``runlint[s3]`` extra and are imported only when
a URL is read. Credentials and endpoints are fsspec's and the cloud SDK's own: the standard
``AWS_*`` variables and AWS config files for S3 (``AWS_ENDPOINT_URL`` for an S3-compatible
server), ``FSSPEC_<PROTOCOL>_<OPTION>`` variables and fsspec's config files for storage
options.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from runlint.extras import MissingExtra
from runlint.run.find import is_run_listing
from runlint.run.importers import HF_STATE, is_checkpoint, is_event_file, kind_of_entries
from runlint.schema.layout import META_FILE, PARTS_DIR, parse_compact, parse_part

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_LISTED",
    "MAX_RUN_BYTES",
    "RemoteError",
    "RemoteRun",
    "find_remote",
    "is_url",
    "local_copy",
    "needed_files",
]

#: ``scheme://``; one-letter schemes are left out (``C://`` is a Windows path).
URL_RE = re.compile(r"^[a-z][a-z0-9+.-]+://", re.I)

#: The most files one URL's listing may hold (a prefix with more is refused: name a narrower one).
MAX_LISTED = 200_000
#: The largest file fetched, and the most bytes fetched for one run.
MAX_FILE_BYTES = 2 * 2**30
MAX_RUN_BYTES = 4 * 2**30

#: Files of a Hugging Face Trainer folder that the importer (and ``runlint sweep``'s
#: hyperparameters) read besides ``trainer_state.json``; plain JSON only.
HF_FILES = ("config.json", "training_args.json", "args.json")
#: Files of a Lightning CSVLogger folder that the importer reads.
LIGHTNING_FILES = ("metrics.csv", "hparams.yaml")


class RemoteError(Exception):
    """A URL that cannot be read; the message is one line naming it."""


def is_url(text: str | Path) -> bool:
    """Whether a command-line path is a URL (``s3://...``, ``gs://...``, ``file://...``)."""
    return isinstance(text, str) and URL_RE.match(text) is not None


@dataclass(frozen=True)
class RemoteRun:
    """One run in object storage: its URL and the files to fetch (picklable, for workers).

    ``url`` is the run's name in reports (characters that are not printable percent-encoded),
    ``source`` the URL its files are fetched from (as the store names them); ``files`` are
    ``(relative path, size)`` below it, ``""`` for a run that is one file (a TensorBoard event
    file, a ``metrics.csv``); ``mtime`` the latest modification time the listing gave (seconds
    since the epoch), if any.
    """

    url: str
    kind: str  # runlint | hf | lightning | tensorboard
    files: tuple[tuple[str, int], ...] = ()
    mtime: float | None = None
    name: str = field(default="", compare=False)  # the run folder's (or file's) own name
    source: str = ""

    def __str__(self) -> str:
        return self.url

    @property
    def size(self) -> int:
        return sum(size for _, size in self.files)


# -- listing -----------------------------------------------------------------------------------


@dataclass
class _Folder:
    files: dict[str, tuple[int, float | None]] = field(default_factory=dict)
    folders: dict[str, _Folder] = field(default_factory=dict)

    def add(self, parts: list[str], size: int, mtime: float | None) -> None:
        folder = self
        for part in parts[:-1]:
            folder = folder.folders.setdefault(part, _Folder())
        folder.files[parts[-1]] = (size, mtime)


def _filesystem(url: str) -> tuple[Any, str]:
    """fsspec's filesystem for ``url`` and the path inside it; ``RemoteError``/``MissingExtra``
    when it cannot be had."""
    try:
        from fsspec.core import url_to_fs
    except ModuleNotFoundError:
        raise MissingExtra(
            f"{_show(url)}: reading runs from a URL needs fsspec, which is not installed: "
            "pip install 'runlint[s3]'",
            name="fsspec",
        ) from None
    try:
        return url_to_fs(url)
    except ImportError as exc:  # fsspec knows the protocol; its package is not installed
        missing = _missing_module(exc)
        package = "s3fs" if url.lower().startswith(("s3://", "s3a://")) else missing
        hint = "pip install 'runlint[s3]'" if package == "s3fs" else f"pip install {package}"
        raise MissingExtra(
            f"{_show(url)}: reading this URL needs {package or 'a package'}, which is not "
            f"installed: {hint}",
            name=package,
        ) from None
    except ValueError as exc:  # unknown protocol, bad URL
        scheme = url.split("://", 1)[0]
        raise RemoteError(
            f"{_show(url)}: unsupported URL scheme {_show(scheme)!r} ({_one_line(exc)})"
        ) from None


def _missing_module(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ModuleNotFoundError) and seen.name:
            return seen.name.partition(".")[0]
        seen = seen.__cause__ or seen.__context__
    return None


def find_remote(url: str) -> list[RemoteRun]:
    """The runs at or below ``url``, in the order ``find_runs`` walks a local folder.

    Raises ``RemoteError`` (one line) when the URL cannot be listed, ``MissingExtra`` when
    fsspec or the protocol's package is not installed. An empty list: no run found.
    """
    fs, root = _filesystem(url)
    root = root.rstrip("/")
    try:
        fs.invalidate_cache()  # a listing cached by an earlier call may be stale
        listing = fs.find(root, detail=True)
        if not listing and fs.isfile(root):
            listing = {root: fs.info(root)}
    except Exception as exc:  # the SDKs raise their own exceptions: each is one line here
        raise RemoteError(f"{_show(url)}: cannot list ({_error_line(exc)})") from None
    if len(listing) > MAX_LISTED:
        raise RemoteError(
            f"{_show(url)}: holds more than {MAX_LISTED} files; name a narrower prefix"
        )
    base = url.rstrip("/")
    if listing.keys() == {root} and _is_file(listing[root]):
        name = root.rsplit("/", 1)[-1]
        info = listing[root]
        kind = _file_kind(name)
        if kind is None:
            return []
        files = (("", _size(info)),)
        return [RemoteRun(_show(base), kind, files, _mtime(info), name=name, source=base)]
    tree = _Folder()
    prefix = root + "/" if root else ""
    for path, info in listing.items():
        if not _is_file(info) or not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")
        if all(_safe(p) for p in parts):  # a key no folder could hold is not any loader's file
            tree.add(parts, _size(info), _mtime(info))
    found: list[RemoteRun] = []
    _walk(tree, base, [], found, root.rsplit("/", 1)[-1])
    return found


def _walk(folder: _Folder, base: str, rel: list[str], out: list[RemoteRun], name: str) -> None:
    kind = "runlint" if is_run_listing(folder.files, folder.folders) else _kind(folder)
    if kind is not None:
        files = needed_files(folder, kind)
        mtimes = [m for f, _ in files if (m := _lookup(folder, f)[1]) is not None]
        source = base + "".join("/" + p for p in rel)
        mtime = max(mtimes, default=None)
        out.append(RemoteRun(_show(source), kind, tuple(files), mtime, name=name, source=source))
        return
    for child in sorted(folder.folders):
        if not child.startswith("."):
            _walk(folder.folders[child], base, [*rel, child], out, child)


def _kind(folder: _Folder) -> str | None:
    names = {*folder.files, *folder.folders}
    return kind_of_entries(
        names, lambda n: n in folder.folders and HF_STATE in folder.folders[n].files
    )


def needed_files(folder: _Folder, kind: str) -> list[tuple[str, int]]:
    """The files of a run folder that its loader reads, as ``(relative path, size)``."""
    files = folder.files
    names: list[str] = []
    if kind == "runlint":
        names = [n for n in files if n == META_FILE or parse_compact(n)]
        parts = folder.folders.get(PARTS_DIR)
        if parts is not None:
            names += [f"{PARTS_DIR}/{n}" for n in parts.files if parse_part(n)]
    elif kind == "hf":
        names = [n for n in (HF_STATE, *HF_FILES) if n in files]
        if HF_STATE not in files:  # the state of the latest checkpoint that has one
            latest = max(
                (
                    (int(n.split("-")[1]), n)
                    for n, f in folder.folders.items()
                    if is_checkpoint(n) and HF_STATE in f.files
                ),
                default=None,
            )
            if latest is not None:
                state = folder.folders[latest[1]].files
                names += [f"{latest[1]}/{n}" for n in (HF_STATE, "config.json") if n in state]
    elif kind == "lightning":
        names = [n for n in LIGHTNING_FILES if n in files]
    elif kind == "tensorboard":
        names = [n for n in files if is_event_file(n)]
        for child, inner in folder.folders.items():  # add_scalars folders: event files only
            if inner.files and not inner.folders and all(map(is_event_file, inner.files)):
                names += [f"{child}/{n}" for n in inner.files]
    return sorted((n, _lookup(folder, n)[0]) for n in names)


def _lookup(folder: _Folder, rel: str) -> tuple[int, float | None]:
    *dirs, name = rel.split("/")
    for d in dirs:
        folder = folder.folders[d]
    return folder.files[name]


def _file_kind(name: str) -> str | None:
    if is_event_file(name):
        return "tensorboard"
    if name == "metrics.csv":
        return "lightning"
    if name == HF_STATE:
        return "hf"
    return None


def _is_file(info: dict[str, Any]) -> bool:
    return info.get("type", "file") == "file"


def _size(info: dict[str, Any]) -> int:
    size = info.get("size")
    return int(size) if isinstance(size, int | float) and size >= 0 else 0


def _mtime(info: dict[str, Any]) -> float | None:
    for key in ("LastModified", "mtime", "updated", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        stamp = getattr(value, "timestamp", None)
        if callable(stamp):
            try:
                return float(stamp())
            except (TypeError, ValueError, OverflowError):
                continue
    return None


def _safe(part: str) -> bool:
    """A path component a local folder can hold as it is named (no ``..``, separators, NUL)."""
    return part not in ("", ".", "..") and "\\" not in part and "\0" not in part and len(part) < 256


def _show(url: str) -> str:
    """A URL as shown in reports: characters that are not printable are percent-encoded."""
    return "".join(c if c.isprintable() else quote(c, safe="") for c in url)


# -- fetching ------------------------------------------------------------------------------------


@contextmanager
def local_copy(run: RemoteRun) -> Iterator[Path]:
    """The run's needed files fetched into a temporary folder, deleted on exit.

    Yields the local path to load (the folder, or the file of a one-file run); raises
    ``RemoteError`` when a file is over the size limits or cannot be fetched.
    """
    tmp = Path(tempfile.mkdtemp(prefix="runlint-remote-"))
    try:
        yield fetch(run, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(run: RemoteRun, dest: Path) -> Path:
    """Fetch the run's needed files below ``dest``; return the local path to load."""
    for rel, size in run.files:
        if size > MAX_FILE_BYTES:
            where = f"{rel} is" if rel else "it is"
            raise RemoteError(
                f"{run.url}: {where} {size / 2**20:.0f} MiB, over the limit of "
                f"{MAX_FILE_BYTES / 2**20:.0f} MiB a file"
            )
    if run.size > MAX_RUN_BYTES:
        raise RemoteError(
            f"{run.url}: its logs are {run.size / 2**20:.0f} MiB, over the limit of "
            f"{MAX_RUN_BYTES / 2**20:.0f} MiB a run"
        )
    fs, root = _filesystem(run.source or run.url)
    name = run.name if _safe(run.name) else "run"
    local = dest / name
    remote_paths, local_paths = [], []
    for rel, _ in run.files:
        target = local.joinpath(*rel.split("/")) if rel else local
        target.parent.mkdir(parents=True, exist_ok=True)
        remote_paths.append(f"{root.rstrip('/')}/{rel}" if rel else root)
        local_paths.append(str(target))
    if not any(rel == "" for rel, _ in run.files):  # a folder, even when no file is needed
        local.mkdir(parents=True, exist_ok=True)
    try:
        if remote_paths:
            fs.get(remote_paths, local_paths)
    except Exception as exc:
        raise RemoteError(f"{run.url}: cannot fetch ({_error_line(exc)})") from None
    for (rel, _), path in zip(run.files, local_paths, strict=True):
        try:
            size = Path(path).stat().st_size
        except OSError:
            raise RemoteError(f"{run.url}: {rel or 'the file'} could not be fetched") from None
        if size > MAX_FILE_BYTES:  # grew after it was listed
            raise RemoteError(
                f"{run.url}: {rel or 'the file'} is over the limit of "
                f"{MAX_FILE_BYTES / 2**20:.0f} MiB a file"
            )
    return local


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return "no such bucket, prefix or file"
    if isinstance(exc, PermissionError):
        return f"access denied: {text}" if text else "access denied"
    return f"{name}: {text}" if text else name


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
