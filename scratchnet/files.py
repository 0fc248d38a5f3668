"""Files a user's work lives in: written atomically with the usual permissions, read safely.

`atomic_write` is the one way scratchnet writes a file: into a temporary file beside the target,
renamed over it only once complete, so a reader, a crash, Ctrl-C or a full disk leaves the old
file or the new one, never half of one, and no temporary file behind. `load_tensors` is the one
way it reads a file a user hands it: `torch.load(..., weights_only=True)`, with errors that name
the file and never advise loading it unsafely.
"""
from __future__ import annotations

import errno
import io
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


class WriteError(OSError):
    """A file could not be written; `path` is the file, and any earlier version is intact."""


def current_umask() -> int:
    """The process's umask (set to 0 for an instant to read it)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *,
                 text: bool = False) -> Path:
    """Call write(f) on a temporary file beside `path` (binary, or UTF-8 text with newline=""
    when `text`), flush it to disk, then rename it over `path`. → path.

    A symbolic link is followed: its target is replaced and the link kept.
    The new file gets the permissions of the file it replaces, or those a new file gets from the
    umask (0666 minus it), never mkstemp's private 0600. Any failure (a full disk, Ctrl-C, an
    error in `write`) removes the temporary file and leaves `path` as it was; OS errors are
    raised as a WriteError naming `path`.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    if path.is_dir():
        raise WriteError(errno.EISDIR, f"{path} is a folder; give a file name", str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(e.errno, f"cannot create the folder {path.parent}: {e.strerror}",
                         str(path)) from None
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~current_umask()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise _write_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as raw:
            if text:
                with io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
                    write(f)
                    f.flush()
                    os.fsync(raw.fileno())
            else:
                write(raw)
                raw.flush()
                os.fsync(raw.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise _write_error(path, e) from None
        if isinstance(e, RuntimeError) and "inline_container" in str(e):
            raise _write_error(path, OSError(errno.EIO, "torch.save failed while writing")) \
                from None
        raise
    return path


def _write_error(path: Path, e: OSError) -> WriteError:
    reason = e.strerror or str(e)
    advice = {errno.ENOSPC: "the disk is full: free some space or write somewhere else",
              errno.EDQUOT: "your disk quota is used up: free some space or write elsewhere",
              errno.EACCES: "permission denied: choose a folder you can write to",
              errno.EROFS: "the file system is read-only: choose another folder"}
    message = f"could not write {path}: {advice.get(e.errno, reason)}; nothing was changed"
    return WriteError(e.errno or errno.EIO, message, str(path))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save(obj) to `path` through `atomic_write`. → path."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_tensors(path: str | os.PathLike, what: str) -> Any:
    """torch.load(path, weights_only=True) on the CPU: tensors and plain data only, so a file
    holding other objects is refused before any of its code can run. `what` names what the file
    should be ("a checkpoint written by scratchnet train") in the errors: FileNotFoundError,
    IsADirectoryError, or ValueError for a file that is not readable as one."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{path} is a folder, not {what}", str(path))
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, f"no such file: {path} (expected {what})",
                                str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file is not one of ours
        raise ValueError(f"{path} is not {what}: {_load_failure(e)}") from None


def _load_failure(e: Exception) -> str:
    """Why torch.load failed, in words; never torch's advice to load the file unsafely."""
    text = str(e)
    if "Unsupported global" in text:
        return ("it holds objects other than tensors and plain data, which scratchnet refuses "
                "to unpickle (that could run code from the file)")
    reason = "it is truncated, corrupt, or not a file written by torch.save"
    if "Weights only load failed" in text or isinstance(e, (EOFError, OSError, RuntimeError,
                                                            KeyError)):
        return reason
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{reason} ({type(e).__name__}{': ' + first if first else ''})"
