"""One run, one writer: an exclusive lock per rank of a run directory, held for the life of a
recording and released by the operating system when the process dies.

The lock is an OS advisory lock on ``.runlint-r<rank>.lock`` in the run directory:
``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows. Both belong to the open file, not to
the file's name, so the lock file is never deleted (deleting it would let a second writer lock
a new file of the same name) and a killed writer's lock is gone the moment it dies. Where the
file system refuses such locks (some network file systems), a lock file created with
``O_EXCL`` holding the owner's host and pid stands in: it is stale when its process is gone
from this host, and must be removed by hand when its owner ran on another host and died.

The file holds the owner (pid, host, start time, command line) as one JSON line, for the
message a second writer gets. A process forked while it holds a lock (a ``DataLoader``
worker) closes its copy, so the lock dies with its owner alone.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import socket
import sys
import time
import weakref
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["LockHeld", "RunLock", "describe_owner"]

fcntl: Any
msvcrt: Any
try:
    fcntl = importlib.import_module("fcntl")
except ImportError:  # Windows
    fcntl = None
try:
    msvcrt = importlib.import_module("msvcrt")
except ImportError:  # POSIX
    msvcrt = None


class LockHeld(Exception):
    """Another writer holds the lock; ``owner`` is what its lock file says (may be empty)."""

    def __init__(self, path: Path, owner: dict[str, Any]) -> None:
        super().__init__(f"{path} is held by {describe_owner(owner)}")
        self.path = path
        self.owner = owner


class RunLock:
    """An exclusive lock on ``path``, taken without waiting (``acquire``), until ``release``."""

    #: The locks this process holds, closed in a forked child (see the module's docstring).
    _held: ClassVar[weakref.WeakSet[RunLock]] = weakref.WeakSet()

    def __init__(self, path: Path, fd: int, method: str) -> None:
        self.path = path
        self.method = method  # "flock", "msvcrt" or "pidfile"
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, *, method: str | None = None) -> RunLock:
        """Lock ``path`` (created if need be) or raise ``LockHeld``; ``OSError`` if the file
        cannot be created. ``method`` forces one mechanism (tests); by default the OS lock,
        else the lock file."""
        method = method or ("flock" if fcntl is not None else "msvcrt" if msvcrt else "pidfile")
        if method != "pidfile":
            try:
                lock = cls._os_lock(path, method)
            except _Unsupported:
                method = "pidfile"
            else:
                cls._held.add(lock)
                return lock
        lock = cls._pid_lock(path)
        cls._held.add(lock)
        return lock

    @classmethod
    def _os_lock(cls, path: Path, method: str) -> RunLock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if method == "flock":
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            os.close(fd)
            if isinstance(exc, BlockingIOError) or exc.errno in _BUSY:
                raise LockHeld(path, _read_owner(path)) from None
            raise _Unsupported from exc  # ENOLCK, EOPNOTSUPP...: no OS locks on this file system
        except BaseException:
            os.close(fd)
            raise
        lock = cls(path, fd, method)
        lock._write_owner()
        return lock

    @classmethod
    def _pid_lock(cls, path: Path) -> RunLock:
        pid_path = path.with_name(path.name + ".pid")
        for _ in range(3):
            try:
                fd = os.open(pid_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = _read_owner(pid_path)
                if not _stale(owner):
                    raise LockHeld(pid_path, owner) from None
                with contextlib.suppress(FileNotFoundError):
                    pid_path.unlink()  # its owner is gone from this host
                continue
            lock = cls(pid_path, fd, "pidfile")
            lock._write_owner()
            return lock
        raise LockHeld(pid_path, _read_owner(pid_path))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (the OS does it too when the process dies). Never raises."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            if self.method == "pidfile":
                self.path.unlink()
            elif self.method == "msvcrt":
                os.lseek(fd, 0, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        with contextlib.suppress(OSError):
            os.close(fd)  # releases a flock

    def _write_owner(self) -> None:
        assert self._fd is not None
        text = json.dumps(_owner()) + "\n"
        with contextlib.suppress(OSError):  # the owner is for messages only
            if self.method == "msvcrt":  # after the locked first byte
                os.lseek(self._fd, 1, os.SEEK_SET)
            else:
                os.ftruncate(self._fd, 0)
                os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, text.encode())

    def _forget(self) -> None:
        """In a forked child: close this copy without unlocking the parent's lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # the parent's open file keeps its flock

    def __repr__(self) -> str:
        return f"<RunLock {self.path} ({self.method}, {'held' if self.held else 'released'})>"


class _Unsupported(Exception):
    pass


#: What a lock taken by another process raises: EAGAIN/EWOULDBLOCK (flock), EACCES and
#: EDEADLOCK (msvcrt.locking).
_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, getattr(errno, "EDEADLOCK", errno.EDEADLK)}


def _owner() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv[:4],
    }


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().lstrip(b"\0 ").decode("utf-8", "replace")
        doc = json.loads(text.splitlines()[0]) if text.strip() else {}
    except (OSError, ValueError, IndexError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _stale(owner: dict[str, Any]) -> bool:
    """Whether a lock file's owner is known to be gone: a process of this host that has
    exited (a lock file that names no owner is half written: taken as live)."""
    pid, host = owner.get("pid"), owner.get("host")
    if not isinstance(pid, int) or host != socket.gethostname() or os.name == "nt":
        return False  # (on Windows, os.kill(pid, 0) would not probe but signal)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by someone else
        return False
    return False


def describe_owner(owner: dict[str, Any]) -> str:
    """``"pid 123 on host h (python train.py), since 2024-..."`` or a plain phrase."""
    if not owner.get("pid"):
        return "another process"
    pid, host = owner["pid"], owner.get("host", "?")
    who = "this process" if pid == os.getpid() and host == socket.gethostname() else f"pid {pid}"
    text = f"{who} on host {host}"
    argv = owner.get("argv")
    if isinstance(argv, list) and argv:
        text += f" ({' '.join(map(str, argv))})"
    if owner.get("started"):
        text += f", since {owner['started']}"
    return text


def _after_fork_in_child() -> None:
    for lock in list(RunLock._held):
        lock._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
