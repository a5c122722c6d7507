"""Atomic writes, and the append-only ``evidence add``.

Every file the package writes goes through :func:`atomic_write`: the bytes go to a temporary file
in the same directory, are flushed to disk, and replace the target with one ``os.replace``, so a
crash or an error never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
from pathlib import Path

from .errors import EvidenceError, Problem
from .evidence import parse_evidence_text, read_text, split_rows


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def append_evidence(new_path: str | Path, into: str | Path) -> int:
    """Append the rows of ``new_path`` to the evidence file ``into``; return how many were added.

    The new rows are validated *together with* the existing ones (so a row duplicating an existing
    row is refused).  Existing bytes are kept verbatim: rows are never rewritten, reordered or dropped.
    The new rows are re-serialised in the target's column order.  On any problem the target is left
    byte-for-byte unchanged.
    """
    target_text = read_text(into)
    new_text = read_text(new_path)
    target_header, _ = split_rows(target_text, str(into))
    new_header, new_rows = split_rows(new_text, str(new_path))
    missing = [c for c in target_header if c not in new_header]
    extra = [c for c in new_header if c not in target_header]
    problems = []
    if missing:
        problems.append(Problem(f"columns of {into} missing from the new file: {', '.join(missing)}"))
    if extra:
        problems.append(Problem(f"columns not in {into}: {', '.join(extra)} (add them to the target first)"))
    if problems:
        raise EvidenceError(f"{new_path}: header does not match {into}", problems)

    eol = "\r\n" if "\r\n" in target_text else "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol)
    for _, fields in new_rows:
        by_name = dict(zip(new_header, fields, strict=True))
        writer.writerow([by_name[c] for c in target_header])
    appended = buf.getvalue()
    sep = "" if target_text.endswith("\n") else eol
    combined = target_text + sep + appended
    # Validate the combined table; line numbers of new rows then refer to their place in the result.
    parse_evidence_text(combined, name=f"{into} + {new_path}")
    atomic_write(into, Path(into).read_bytes() + (sep + appended).encode())
    return len(new_rows)
