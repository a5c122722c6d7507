"""Atomic file and folder writes.

Every file the package writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the same directory, are flushed to disk, and replace the target with one ``os.replace``, so a
crash or an error never leaves a half-written file behind.  A saved result is a folder written as one
unit (:func:`replace_dir`); leftovers of a killed writer are removed by the next one (:func:`clean_stale`).

Modes: temporary files are made private (``mkstemp`` gives 0600), so every output is given the mode an
ordinary ``open()`` would have given it before it is renamed into place: :func:`new_file_mode` (0644 under
the usual umask 022) for a new file, the old file's own mode for a replaced one, and :func:`new_dir_mode`
(0755) for a result folder.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp")
    try:
        os.chmod(tmp, _target_mode(path))  # mkstemp makes 0600; keep the file's own (or the usual) mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _target_mode(path: Path) -> int:
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    return new_file_mode()


def new_file_mode() -> int:
    """The mode of a new output file: ``0o666`` less the process umask, as ``open()`` would create it."""
    return 0o666 & ~umask()


def new_dir_mode() -> int:
    """The mode of a new output folder: ``0o777`` less the process umask, as ``mkdir`` would create it."""
    return 0o777 & ~umask()


def umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``).

    Elsewhere it is set and restored at once; between the two calls another thread would create files
    with mode 0666, which is why the read-only way comes first.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _renameat2_exchange() -> Callable[[Path, Path], bool]:
    """``exchange(a, b)``: swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return lambda a, b: False
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: Path, b: Path) -> bool:
        return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0

    return exchange


_exchange = _renameat2_exchange()


def replace_dir(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target``, replacing what is there in one step where possible.

    With no ``target`` yet this is one ``os.rename``.  Otherwise the two folders are swapped atomically
    (Linux ``renameat2``), so a reader or a crash sees either the old folder or the new one, never a mix;
    the old one is then deleted.  Where the swap is not available the old folder is first renamed aside
    (a crash in between leaves it intact beside the target, named ``.<name>.old-*``).
    """
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new)
        return
    aside = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.rename(target, aside)
    os.rename(new, target)
    shutil.rmtree(aside)


def clean_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove leftovers ``<prefix>*`` in ``folder`` whose writing process (pid in the name) is gone.

    Temporary files and folders are named ``<prefix><pid>-<random>``; a crash (``kill -9``) leaves them
    behind, and the next writer removes them.  Returns what was removed.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(f"{prefix}*"):
        pid = p.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and _alive(int(pid)):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
