"""The append-only ``evidence add``: new rows are validated with the existing ones, then appended atomically."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .errors import EvidenceError, Problem
from .evidence import parse_evidence_text, read_text, split_rows
from .files import atomic_write


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
