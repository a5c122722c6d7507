"""The append-only ``evidence add``: new rows are validated with the existing ones, then appended in place.

How the target is written, and why
----------------------------------
The new bytes are *appended to the existing file* (``O_APPEND`` write, then ``fsync``), under an
exclusive lock, after the whole table (old rows + new rows) has validated:

* **Concurrent adds.**  Each ``evidence add`` takes an exclusive ``flock`` on the target file itself
  (its inode), then re-reads the target, validates and appends, and only then releases the lock.
  Two adds into one file therefore run one after the other, and the second one validates against
  the rows the first one added (a duplicate is refused rather than written twice).  Locking the
  inode rather than a sidecar ``.name.lock`` file also serialises writers that reach the file
  through different names (a symlink, a hard link) and leaves no lock files behind.  If the path
  was replaced while we waited (an editor saving by rename), the new file is locked instead.
* **Links.**  A symlink is resolved and the real file is updated.  A hard link shares its inode with
  the other names; appending writes into that inode, so every name sees the new rows and each
  stays a link.  Writing a temporary file and renaming it over the target (the usual atomic
  replace) would instead detach the path from its other names, change its inode, owner and
  permissions, and defeat the inode lock, so it is not used here.
* **Existing bytes are never rewritten.**  Appending only writes after the old end of the file.
  If a write fails (disk full, interrupted), the file is truncated back to its old length, so a
  failed add leaves the target byte-identical.  A crash of the machine in the middle of the write
  can leave a partial last row after the old bytes; the next ``evidence validate`` names it by line.
* **Read-only targets** (no write permission bit, e.g. mode 444) are refused: the user marked the
  file as not to be changed, and root could otherwise write it anyway.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import EvidenceError, Problem
from .evidence import (
    ChainSource,
    FileSlice,
    check_bytes,
    check_path,
    detect_schema,
    read_header,
    read_source,
    read_text,
    split_rows,
    suggest_column,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: a sidecar lock file via the filelock package
    fcntl = None  # type: ignore[assignment]

LOCK_TIMEOUT = 60.0
"""Seconds to wait for another ``evidence add`` into the same file before giving up."""


def append_evidence(new_path: str | Path, into: str | Path) -> int:
    """Append the rows of ``new_path`` to the evidence file ``into``.

    The new rows are validated *together with* the existing ones (so a row duplicating an existing
    row is refused).  Existing bytes are kept verbatim: rows are never rewritten, reordered or
    dropped.  The new rows are re-serialised in the target's column order and line endings; a column of
    the target that the new file leaves out is written blank, unless its table requires it.  Lines
    starting with ``#`` in the new file are comments and are not appended.  See the module docstring for
    locking, links and failure behaviour.

    Parameters
    ----------
    new_path
        CSV file with the new rows: the target's columns in any order, of which only the columns the table
        requires (:mod:`harmoni_bayes.schema`) must be there; no column the target does not have.
    into
        The evidence CSV to append to (a symlink is followed; a hard link stays a link).

    Returns
    -------
    int
        The number of rows appended.

    Raises
    ------
    EvidenceError
        For any problem with either file, listing every problem; the target is then unchanged.
    """
    shown = Path(into)
    target = _writable_target(shown)
    new_text = read_text(new_path)
    new_header, new_rows = split_rows(new_text, str(new_path))
    if not new_rows:
        raise EvidenceError(
            f"{new_path}: no rows to add (lines starting with '#' are comments: to add the example row of "
            "'evidence template', fill it in and remove its '#')"
        )
    with _locked(target, shown) as fd:
        size = os.fstat(fd).st_size  # read again under the lock: another add may just have appended

        def target_bytes() -> FileSlice:
            return FileSlice(fd, size)

        check_bytes(target_bytes(), str(shown))
        target_header, eol, final_newline = _layout(fd, size, str(shown))
        _check_columns(new_header, target_header, new_path, shown)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator=eol)
        for _, fields in new_rows:
            by_name = dict(zip(new_header, fields, strict=True))
            writer.writerow([by_name.get(c, "") for c in target_header])
        payload = (("" if final_newline else eol) + buf.getvalue()).encode()
        # Validate the combined table; line numbers of new rows then refer to their place in the result.
        read_source(ChainSource([target_bytes, lambda: io.BytesIO(payload)]), name=f"{into} + {new_path}")
        _append(fd, payload, size, shown)
    return len(new_rows)


def _writable_target(path: Path) -> Path:
    """The real file behind ``path`` (symlinks resolved), refused when missing, not a file or read-only."""
    check_path(path)
    real = path.resolve()
    mode = real.stat().st_mode
    if not stat.S_ISREG(mode):
        raise EvidenceError(f"{path}: is not a regular file; 'evidence add' appends to a CSV file")
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise EvidenceError(
            f"{path}: the file is read-only (mode {stat.S_IMODE(mode):03o}); 'evidence add' does not change "
            "read-only files; make it writable first (chmod u+w) if it should take new rows"
        )
    return real


@contextlib.contextmanager
def _locked(real: Path, shown: Path) -> Iterator[int]:
    """An append-mode descriptor of ``real`` holding an exclusive lock (see the module docstring)."""
    if fcntl is None:  # pragma: no cover - no flock: lock a sidecar file instead
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(real.with_name(f".{real.name}.lock")), timeout=LOCK_TIMEOUT):
                fd = _open(real, shown)
                try:
                    yield fd
                finally:
                    os.close(fd)
        except Timeout:
            raise EvidenceError(_busy(shown)) from None
        return
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        fd = _open(real, shown)
        try:
            _flock(fd, deadline, shown)
            if _still_at(fd, real):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the path now names another file (replaced while we waited): lock that one
    try:
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _open(real: Path, shown: Path) -> int:
    try:
        return os.open(real, os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise EvidenceError(f"{shown}: file not found") from None
    except OSError as exc:
        raise EvidenceError(f"{shown}: cannot be opened for writing ({exc.strerror})") from None


def _flock(fd: int, deadline: float, shown: Path) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise EvidenceError(_busy(shown)) from None
            time.sleep(0.005)


def _busy(shown: Path) -> str:
    return (
        f"{shown}: another 'evidence add' has been writing this file for {LOCK_TIMEOUT:.0f} s; "
        "try again when it has finished"
    )


def _still_at(fd: int, real: Path) -> bool:
    try:
        here = os.stat(real)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def _layout(fd: int, size: int, name: str) -> tuple[list[str], str, bool]:
    """The target's header, its line ending (that of its first line) and whether it ends with a newline."""
    text = io.TextIOWrapper(io.BufferedReader(FileSlice(fd, size)), encoding="utf-8-sig", newline="")
    with text:
        header = read_header(csv.reader(text), name)
    first = os.pread(fd, 1 << 16, 0)
    eol = "\r\n" if b"\n" in first and first.split(b"\n", 1)[0].endswith(b"\r") else "\n"
    return header, eol, os.pread(fd, 1, size - 1) == b"\n"


def _check_columns(new_header: list[str], target_header: list[str], new_path, into: Path) -> None:
    """Refuse new columns the target lacks, and required columns the new file lacks (all named at once).

    Other columns of the target may be left out: they are written blank.
    """
    required = {c.name for c in detect_schema(target_header).columns if c.required}
    missing = [c for c in target_header if c not in new_header]
    missing_required = [c for c in missing if c in required]
    extra = [c for c in new_header if c not in target_header]
    problems = []
    if missing_required:
        problems.append(
            Problem(
                f"required columns of {into} missing from the new file: {', '.join(missing_required)} "
                "(other columns may be left out; they are written blank)"
            )
        )
    if extra:
        named = []
        for c in extra:
            s = suggest_column(c, missing)
            named.append(f"{c} (did you mean {s}?)" if s else c)
        problems.append(Problem(f"columns not in {into}: {', '.join(named)} (add them to the target first)"))
    if problems:
        raise EvidenceError(f"{new_path}: header does not match {into}", problems)


def _append(fd: int, payload: bytes, size: int, shown: Path) -> None:
    """Write ``payload`` at the end and flush it to disk; on any failure cut the file back to ``size``."""
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
            os.fsync(fd)
        if isinstance(exc, OSError):
            raise EvidenceError(
                f"{shown}: could not append the new rows ({exc.strerror or exc}); the file was left as it was"
            ) from None
        raise
