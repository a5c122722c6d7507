"""Load and validate evidence tables.

One data contract: every table, shipped or the user's, goes through one validator
(:func:`read_evidence` for files, :func:`parse_evidence_text` for text), which collects *every*
problem (row, column, value, reason) and raises one :class:`~harmoni_bayes.errors.EvidenceError`.
The result is a DataFrame with

* the file's columns (numbers as floats, blanks as NaN, text as pandas ``str``);
* ``row_id``: a stable id, ``<trial>|<endpoint>|<factor>=<level>|<disclosed>|<hash6>``;
* ``line_no``: the row's line in the file (header = line 1);
* the derived effect columns of :mod:`harmoni_bayes.effects` (``log_hr``, ``se``, ``se_method``...).

Comments: a line that starts with ``#`` (a record whose first cell begins with ``#``) is skipped, before or
after the header; ``harmoni-bayes evidence template`` writes its example row as one.  A comment must stay
on its line: one that an unclosed quote carries on to the next lines is refused, naming its line, so that
no data row can be swallowed by a comment.

Warnings (an asymmetric CI, unknown columns, invisible characters, one registry id under two
trial names) do not stop anything; they are kept in ``df.attrs["warnings"]`` as strings.

What is refused, beyond the column kinds of :mod:`harmoni_bayes.schema`:

* numbers that are not plain decimal or scientific notation: ``0_51`` (Python would read 51),
  ``0,51`` (decimal comma), ``95%``, ``nan``, ``inf``, hex, non-ASCII digits;
* an unknown column one edit away from a schema column (``evnts_total``, ``Events_Total``);
* a ``disclosed`` date after today, a ``data_cutoff`` after its row's ``disclosed``;
* a derived SE below :data:`~harmoni_bayes.effects.SE_FLOOR`;
* files above :data:`MAX_FILE_BYTES` or :data:`MAX_ROWS` (refused before memory runs out).

How it scales
-------------
A file is read twice, streaming, from one snapshot of its bytes (a shared lock waits for a running
``evidence add``).  The :mod:`csv` module is the reference reader: its pass records each record's
first line, field count and text length, and keeps the rows only of small tables.  The cells of a
large table come from PyArrow's CSV reader, column by column; its rows are checked against the
first pass (same count, same text length per row), and any disagreement falls back to the
:mod:`csv` module's values.  All checks then work on whole columns (Arrow kernels and numpy
masks); Python touches only the cells that have a problem, and hashes each row once for its id.
One million rows (450 MB) validate in about 15 s and 1.4 GB (``benchmarks/bench_validation.py``).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import os
import re
import time
import unicodedata
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .effects import derive_effects, math_log, se_floor_problems, str_series
from .errors import EvidenceError, Problem
from .schema import COMMENT, NETWORK, NETWORK_TREATMENTS, REFERENCE, TRIALS, Column, HRTriple, Schema

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; readers then do not wait for writers
    fcntl = None  # type: ignore[assignment]

_NUMERIC_KINDS = {"positive", "count", "level", "fraction", "rate", "number"}
DERIVED_COLUMNS = frozenset(
    {"row_id", "line_no", "log_hr", "se", "se_method", "usable", "unusable_reason"}
    | {"log_hr_pfs", "se_pfs", "log_hr_os", "se_os"}
)

MAX_FILE_BYTES = 1 << 30
"""Largest evidence file read (1 GiB).  Validation needs about three times the file size in memory
(most of it the table it returns); a larger file is refused before it is read."""

MAX_ROWS = 2_000_000
"""Most data rows in one table: 2 million rows like the shipped ones are a 900 MB file and need
about 2.4 GB to validate.  Counted while the file is first read, before memory is used; a larger
table is refused with a message instead of exhausting memory."""

MAX_PROBLEMS = 1000
"""At most this many problems are listed (the first ones by line); the rest are counted.  A file
with more has a systematic error (wrong delimiter, decimal commas) that is fixed once, not per cell."""

MAX_WARNINGS_PER_KIND = 100
"""At most this many warnings of one kind are listed; the rest are counted in one more warning."""

ByteStream = io.RawIOBase | io.BufferedIOBase
"""A binary stream that can ``read`` and ``readinto`` (a file opened 'rb', :class:`FileSlice`, BytesIO)."""

_STR = pa.large_string()  # the type pandas keeps text in: no conversion when the DataFrame is built
_SMALL_TABLE = 2000  # rows kept from the csv pass; larger tables take their values from PyArrow
_CHUNK = 8 << 20  # bytes read at a time by the file checks

# Plain decimal or scientific notation, ASCII digits only.  float() also takes '0_51' (as 51),
# 'nan', 'inf', '١' and surrounding whitespace; none of these is how a published number is printed.
_PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_NON_FINITE_WORDS = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def today() -> dt.date:
    """Today's date, for the "disclosed in the future" check.  Tests replace this function."""
    return dt.date.today()


def shipped_path(name: str) -> Path:
    """Path of a CSV shipped in ``harmoni_bayes/data``."""
    return Path(str(resources.files("harmoni_bayes") / "data" / name))


def load_evidence() -> pd.DataFrame:
    """The shipped HARMONi evidence table (``data/ivonescimab_trials.csv``), validated, with effects derived."""
    return read_evidence(shipped_path("ivonescimab_trials.csv"))


def load_reference_trials() -> pd.DataFrame:
    """The shipped reference NSCLC trials with PFS and OS HRs (``data/nsclc_pfs_os_trials.csv``).

    Adds ``log_hr_pfs``, ``se_pfs``, ``log_hr_os`` and ``se_os`` (SE from the 95% CI; NaN where a CI is missing).
    """
    return read_evidence(shipped_path("nsclc_pfs_os_trials.csv"), schema=REFERENCE)


def load_network() -> pd.DataFrame:
    """The shipped first-line NSCLC treatment network (``data/nsclc_pdl1_network.csv``), validated.

    The trial columns (with effects derived) plus ``treatment_experimental`` and ``treatment_control``, each
    arm's network node; ``disclosed`` may be blank (see :data:`~harmoni_bayes.schema.NETWORK`).
    """
    return read_evidence(shipped_path("nsclc_pdl1_network.csv"), schema=NETWORK)


def read_evidence(path: str | Path, schema: Schema | None = None) -> pd.DataFrame:
    """Read and validate an evidence CSV file.

    Parameters
    ----------
    path
        The CSV file (UTF-8, comma-separated, header on line 1).
    schema
        :data:`~harmoni_bayes.schema.TRIALS`, :data:`~harmoni_bayes.schema.REFERENCE` or
        :data:`~harmoni_bayes.schema.NETWORK`; detected from the header when not given.

    Returns
    -------
    pandas.DataFrame
        The typed table described in the module docstring.

    Raises
    ------
    EvidenceError
        Listing every problem found, each with its line and column.
    """
    p = Path(path)
    check_path(p)
    with _open_for_reading(p) as fh:
        fd = fh.fileno()
        _wait_for_writers(fd)
        size = os.fstat(fd).st_size  # both passes read these bytes, even if the file grows meanwhile
        check_bytes(FileSlice(fd, size), str(p))
        return _parse(FdSource(fd, size), name=str(path), schema=schema)


def read_text(path: str | Path) -> str:
    """Read a file as UTF-8 text, turning every way it can fail into an :class:`EvidenceError`."""
    p = Path(path)
    check_file(p)
    return p.read_bytes().decode("utf-8-sig")


def check_file(path: str | Path) -> None:
    """Refuse a path that is not a readable UTF-8 text file of reasonable size, saying why.

    Reads the file in chunks, so a large file is checked without being held in memory.

    Raises
    ------
    EvidenceError
        Not found, a directory, empty, larger than :data:`MAX_FILE_BYTES`, binary, UTF-16/UTF-32
        text, a NUL byte (named by byte offset and line), or bytes that are not UTF-8.
    """
    p = Path(path)
    check_path(p)
    with _open_for_reading(p) as fh:
        check_bytes(fh, str(p))


def check_path(p: Path) -> None:
    """Refuse a path that does not exist, is a directory, or is above :data:`MAX_FILE_BYTES`."""
    if not p.exists():
        raise EvidenceError(f"{p}: file not found")
    if p.is_dir():
        raise EvidenceError(f"{p}: is a directory, not a CSV file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise EvidenceError(
            f"{p}: the file is {size / 2**20:,.0f} MiB; files above {MAX_FILE_BYTES / 2**20:,.0f} MiB are refused "
            "(validation needs about three times the file size in memory); split it into smaller files"
        )


def _open_for_reading(p: Path) -> io.BufferedReader:
    try:
        return open(p, "rb")
    except OSError as exc:
        raise EvidenceError(f"{p}: cannot be read ({exc.strerror})") from None


def _wait_for_writers(fd: int) -> None:
    """Take a shared lock, so that a table is never read while ``evidence add`` appends to it.

    Best effort: where files cannot be locked, or a writer holds the file longer than a minute,
    the file is read as it is.
    """
    if fcntl is None:  # pragma: no cover - Windows
        return
    deadline = time.monotonic() + 60
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        except OSError:
            return


def check_bytes(stream: ByteStream, name: str) -> None:
    """The byte-level checks of :func:`check_file` on an open binary stream, read to its end.

    Raises
    ------
    EvidenceError
        Empty, binary, UTF-16/UTF-32 text, a NUL byte (named by byte offset and line), or not UTF-8.
    """
    head = stream.read(_CHUNK) or b""
    _sniff_encoding(head, name)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line, nonblank = 0, 1, False
    chunk = head
    while chunk:
        nul = chunk.find(b"\x00")
        if nul >= 0:
            at, on = offset + nul, line + chunk.count(b"\n", 0, nul)
            raise EvidenceError(
                f"{name}: contains a NUL byte (byte offset {at}, line {on}); the file is damaged or was saved "
                "in a binary format; save it again as UTF-8 CSV"
            )
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            at = offset - pending + exc.start
            on = line + chunk.count(b"\n", 0, max(at - offset, 0))
            raise EvidenceError(
                f"{name}: not UTF-8 text (byte {at}, line {on}, cannot be decoded); save the file as UTF-8 CSV"
            ) from None
        nonblank = nonblank or bool(chunk.strip())
        line += chunk.count(b"\n")
        offset += len(chunk)
        chunk = stream.read(_CHUNK) or b""
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise EvidenceError(
            f"{name}: not UTF-8 text (the last bytes are a cut-off character); save the file as UTF-8 CSV"
        ) from None
    if not nonblank:
        raise EvidenceError(f"{name}: the file is empty")


def _sniff_encoding(head: bytes, name: str) -> None:
    """Name UTF-16/32 text and binary files from their first bytes (UTF-8 is checked afterwards)."""
    save = "save the file as UTF-8 CSV (in a spreadsheet: 'CSV UTF-8 (comma delimited)')"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise EvidenceError(f"{name}: this is UTF-32 text, not UTF-8; {save}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise EvidenceError(f"{name}: this is UTF-16 text, not UTF-8; {save}")
    sample = head[:8192]
    if b"\x00" not in sample:
        return
    even, odd = sample[0::2], sample[1::2]
    # UTF-16 without a byte-order mark: ASCII text has a NUL in every other byte, and only there.
    for nuls, other in ((odd, even), (even, odd)):
        if len(nuls) >= 2 and nuls.count(0) >= 0.4 * len(nuls) and other.count(0) <= 0.02 * len(other):
            raise EvidenceError(f"{name}: this looks like UTF-16 text, not UTF-8; {save}")
    # NULs among other control bytes, or bytes that are not UTF-8: a binary file.  A NUL in otherwise
    # clean UTF-8 text is a damaged text file, named with its offset by check_bytes.
    controls = set(range(32)) - {0, 9, 10, 13}
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample)  # the sample may end inside a character
        clean = not any(b in controls for b in sample)
    except UnicodeDecodeError:
        clean = False
    if not clean:
        raise EvidenceError(f"{name}: this is a binary file, not a CSV text file")


def detect_schema(header: list[str]) -> Schema:
    """The reference schema when the header has ``pfs_hr`` and no ``endpoint`` (in any case); the network schema
    when it has ``treatment_experimental`` and ``treatment_control``; else trials.
    """
    norm = {_normalise(h) for h in header}
    if "pfs_hr" in norm and "endpoint" not in norm:
        return REFERENCE
    return NETWORK if all(_normalise(c) in norm for c in NETWORK_TREATMENTS) else TRIALS


def is_comment(fields: list[str]) -> bool:
    """Whether a CSV record is a comment line (its first cell starts with ``#``)."""
    return bool(fields) and fields[0].startswith(COMMENT)


def _comment_problem(start: int, end: int) -> Problem:
    return Problem(
        f"a comment (a line starting with '#') runs on to line {end}: it has an unclosed quote (\"); "
        "close the quote or remove it, so that the comment stays on its line",
        row=start,
    )


def split_rows(text: str, name: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """CSV text -> (header, [(line_no, fields)]).  Ragged rows are problems, reported all at once.

    Comment lines (see the module docstring) are skipped; one that runs over several lines is a problem.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    rows: list[tuple[int, list[str]]] = []
    problems: list[Problem] = []
    header: list[str] | None = None
    try:
        start = 1
        for fields in reader:
            if is_comment(fields):
                if reader.line_num != start:
                    problems.append(_comment_problem(start, reader.line_num))
            elif header is None:
                header = [h.strip() for h in fields]
                _check_delimiter(header, name)
            elif any(f.strip() for f in fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise EvidenceError(f"{name}: not a readable CSV file (line {reader.line_num}: {exc})") from None
    if not header or not any(header):
        raise EvidenceError(f"{name}: no header row")
    for line, fields in rows:
        if len(fields) != len(header):
            problems.append(Problem(f"has {len(fields)} fields but the header has {len(header)}", row=line))
    if problems:
        raise EvidenceError(f"{name}: malformed CSV", problems)
    return header, rows


def parse_evidence_text(text: str, name: str = "<text>", schema: Schema | None = None) -> pd.DataFrame:
    """Validate CSV text against a schema and return the typed table (see the module docstring).

    Parameters
    ----------
    text
        The CSV text, header first.
    name
        How the table is named in messages.
    schema
        The schema; detected from the header when not given.

    Raises
    ------
    EvidenceError
        Listing every problem found, each with its line and column.
    """
    if len(text) > MAX_FILE_BYTES:
        raise EvidenceError(f"{name}: the text is longer than {MAX_FILE_BYTES / 2**20:,.0f} MiB; split it")
    nul = text.find("\x00")
    if nul >= 0:
        raise EvidenceError(f"{name}: contains a NUL character (line {text.count(chr(10), 0, nul) + 1})")
    return _parse(_TextSource(text.removeprefix("\ufeff")), name=name, schema=schema)


# --------------------------------------------------------------------------- sources


class Source:
    """Where a table's bytes come from; it is read twice (csv pass, then Arrow), so it must re-open."""

    def text(self) -> IO[str]:
        """A fresh text stream (UTF-8, BOM removed, newlines untranslated)."""
        return io.TextIOWrapper(self.binary(), encoding="utf-8-sig", newline="")

    def binary(self) -> Any:
        """A fresh binary stream, or anything :func:`pyarrow.csv.open_csv` accepts."""
        raise NotImplementedError


class FileSlice(io.RawIOBase):
    """The first ``size`` bytes of an open file descriptor, read with ``pread`` (its offset is not used).

    Parameters
    ----------
    fd
        An open file descriptor; it is not closed with the slice.
    size
        How many bytes, from the start of the file, the slice holds.
    """

    def __init__(self, fd: int, size: int):
        self._fd, self._size, self._pos = fd, size, 0

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, buf) -> int:
        """Read the next bytes of the slice into ``buf``; 0 at its end."""
        want = min(len(buf), self._size - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._pos)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


@dataclass
class FdSource(Source):
    """The first ``size`` bytes of an open file (a snapshot: bytes appended later are not read)."""

    fd: int
    size: int

    def text(self) -> IO[str]:
        """The bytes as UTF-8 text (see :meth:`Source.text`)."""
        raw = io.BufferedReader(FileSlice(self.fd, self.size), buffer_size=1 << 20)
        return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")

    def binary(self) -> Any:
        """The bytes, buffered."""
        # read in blocks (a memory map would count the whole file as resident memory while it is parsed)
        return io.BufferedReader(FileSlice(self.fd, self.size), buffer_size=1 << 20)


@dataclass
class _TextSource(Source):
    value: str

    def text(self) -> IO[str]:
        return io.StringIO(self.value, newline="")

    def binary(self) -> Any:
        return pa.BufferReader(self.value.encode())


class _ChainReader(io.RawIOBase):
    """Several binary streams read as one (used by ``evidence add``: the target, then the new rows)."""

    def __init__(self, parts: Iterable[ByteStream]):
        self._parts = list(parts)

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while self._parts:
            n = self._parts[0].readinto(buf)
            if n:
                return n
            self._parts.pop(0)
        return 0


@dataclass
class ChainSource(Source):
    """Bytes from several openers, one after the other."""

    openers: list[Callable[[], ByteStream]] = field(default_factory=list)

    def binary(self) -> Any:
        """The openers' streams, one after the other, buffered."""
        return io.BufferedReader(_ChainReader(o() for o in self.openers), buffer_size=1 << 20)


# --------------------------------------------------------------------------- the validator


@dataclass
class _Scan:
    header: list[str]
    lines: np.ndarray  # line of each data row
    lengths: np.ndarray  # characters in each row's fields, to check that Arrow read the same rows
    rows: list[list[str]] | None  # stripped fields, when the table is small
    ragged: list[Problem]


def read_source(source: Source, name: str, schema: Schema | None = None) -> pd.DataFrame:
    """Validate the table read from ``source``, as :func:`read_evidence` does for a file."""
    return _parse(source, name, schema)


def _parse(source: Source, name: str, schema: Schema | None) -> pd.DataFrame:
    with source.text() as stream:
        reader = csv.reader(stream)
        header = read_header(reader, name)
        schema = schema or detect_schema(header)
        header_problems, warnings = _check_header(header, schema)
        scan = _scan_rows(reader, header, name)
    if scan.ragged:
        raise EvidenceError(f"{name}: malformed CSV", scan.ragged)
    if header_problems:
        raise EvidenceError(f"{name}: not a valid {schema.name} table", header_problems)
    n = len(scan.lines)
    if not n:
        raise EvidenceError(f"{name}: the table has a header but no data rows")
    columns = _values(source, scan) if scan.rows is None else _columns_of(scan.rows, len(header))
    if len(columns[0]) != n:  # only if the bytes changed between the two passes
        raise EvidenceError(f"{name}: the file changed while it was read; read it again")
    raw: dict[str, pa.ChunkedArray] = dict(zip(header, columns, strict=True))
    for col in schema.names:  # optional columns absent from the file read as blank
        if col not in raw:
            raw[col] = pa.chunked_array([pa.repeat(pa.scalar("", _STR), n)])
    return _validate(raw, header, scan, schema, name, warnings)


def read_header(reader, name: str) -> list[str]:
    """The first record of a :func:`csv.reader` that is not a comment, stripped.

    Refused when blank, in another delimiter, or after a comment that runs over several lines.
    """
    try:
        start = reader.line_num + 1
        first = next(reader, None)
        while first is not None and is_comment(first):
            if reader.line_num != start:
                raise EvidenceError(f"{name}: malformed CSV", [_comment_problem(start, reader.line_num)])
            start = reader.line_num + 1
            first = next(reader, None)
    except csv.Error as exc:
        raise EvidenceError(f"{name}: not a readable CSV file (line {reader.line_num}: {exc})") from None
    header = [h.strip() for h in first or []]
    if not header or not any(header):
        raise EvidenceError(f"{name}: no header row")
    _check_delimiter(header, name)
    return header


def _check_delimiter(header: list[str], name: str) -> None:
    """A header read as one or two fields that holds ';' or tabs is another delimiter, named as such."""
    if len(header) > 2:
        return
    for delim, word in ((";", "semicolon"), ("\t", "tab")):
        k = sum(h.count(delim) for h in header)
        if k >= 2:
            raise EvidenceError(
                f"{name}: looks {word}-delimited (the header has {k} {delim!r} and {len(header) - 1} ','); "
                "save it as comma-separated CSV (in a spreadsheet: 'CSV UTF-8 (comma delimited)')"
            )


def _scan_rows(reader, header: list[str], name: str) -> _Scan:
    """The csv pass: line, field count and text length of every record; the rows themselves when few."""
    ncol = len(header)
    lines, lengths = array("q"), array("q")
    rows: list[list[str]] | None = []
    ragged: list[Problem] = []
    start = reader.line_num + 1
    try:
        for fields in reader:
            text = "".join(fields)
            if is_comment(fields):
                if reader.line_num != start:
                    ragged.append(_comment_problem(start, reader.line_num))
            elif text and not text.isspace():  # a record of blank cells is skipped, as a blank line
                if len(fields) != ncol:
                    ragged.append(Problem(f"has {len(fields)} fields but the header has {ncol}", row=start))
                else:
                    lines.append(start)
                    lengths.append(len(text))
                    if rows is not None:
                        rows.append([f.strip() for f in fields])
                        if len(rows) > _SMALL_TABLE:
                            rows = None
                    if len(lines) > MAX_ROWS:
                        raise EvidenceError(
                            f"{name}: more than {MAX_ROWS:,} data rows; larger tables are refused "
                            "(validation would need more memory than is safe); split the file"
                        )
            start = reader.line_num + 1
    except csv.Error as exc:
        raise EvidenceError(f"{name}: not a readable CSV file (line {reader.line_num}: {exc})") from None
    return _Scan(header, np.frombuffer(lines, dtype=np.int64), np.frombuffer(lengths, dtype=np.int64), rows, ragged)


def _columns_of(rows: list[list[str]], ncol: int) -> list[pa.ChunkedArray]:
    return [pa.chunked_array([pa.array([r[j] for r in rows], _STR)]) for j in range(ncol)]


def _values(source: Source, scan: _Scan) -> list[pa.ChunkedArray]:
    """Cell values read by PyArrow, checked row by row against the csv pass; the csv module's when they differ."""
    ncol = len(scan.header)
    names = [f"c{j}" for j in range(ncol)]
    try:
        reader = pcsv.open_csv(
            source.binary(),
            read_options=pcsv.ReadOptions(column_names=names, block_size=4 << 20),  # bounded read-ahead
            # rows the csv pass skipped as blank ('  ', '""') are single fields here: skip them too
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=lambda row: "skip"),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, _STR), strings_can_be_null=False),
        )
        table = reader.read_all()
        comments = pc.starts_with(table.column(0), COMMENT)
        if pc.any(comments).as_py():
            table = table.filter(pc.invert(comments))
        table = table.slice(1)  # the first row that is not a comment is the header
    except (pa.ArrowException, OSError):
        return _fallback(source, scan)
    n = table.num_rows
    columns: list[Any] = table.columns
    del table  # each column is released once trimmed
    lengths, blank = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    for j in range(ncol):
        lengths += pc.utf8_length(columns[j]).to_numpy()
        columns[j] = _strip(columns[j])
        blank &= _np(pc.equal(columns[j], ""))
    pa.default_memory_pool().release_unused()
    keep = ~blank
    if keep.sum() != len(scan.lines) or not np.array_equal(lengths[keep], scan.lengths):
        return _fallback(source, scan)
    if not keep.all():
        mask = pa.array(keep)
        columns = [pc.filter(c, mask) for c in columns]
    return columns


# What str.strip removes (str.isspace); pyarrow's utf8_trim_whitespace removes the same characters.
_WHITESPACE = pa.array(sorted(chr(c) for c in range(0x3001) if chr(c).isspace()), _STR)


def _strip(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """``str.strip`` of every cell, copying the column only when some cell starts or ends with whitespace."""
    first = pc.utf8_slice_codeunits(col, 0, 1)
    last = pc.utf8_slice_codeunits(col, -1)
    if pc.any(pc.is_in(first, value_set=_WHITESPACE)).as_py() or pc.any(pc.is_in(last, value_set=_WHITESPACE)).as_py():
        return pc.utf8_trim_whitespace(col)
    return col


def _fallback(source: Source, scan: _Scan) -> list[pa.ChunkedArray]:
    # Unusual quoting that the two readers split differently: the csv module is the reference.
    ncol = len(scan.header)
    with source.text() as stream:
        reader = csv.reader(stream)
        while is_comment(next(reader)):  # up to and including the header
            pass
        rows = [s for f in reader if len(f) == ncol and not is_comment(f) and any(s := [x.strip() for x in f])]
    return _columns_of(rows, ncol)


def _np(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False) if isinstance(values, pa.Array) else values.to_numpy()


def _digests(raw: dict[str, pa.ChunkedArray], n: int) -> np.ndarray:
    """sha1 of each row's stripped cells joined by U+001F (absent columns as blanks), one row of 20 bytes each.

    This is the row id hash; it must stay exactly what it was (results and specs refer to row ids).
    """
    cols = list(raw.values())
    out = bytearray()
    sha1 = hashlib.sha1
    step = 20_000  # rows joined at a time: bounded memory
    for at in range(0, n, step):
        joined = pc.binary_join_element_wise(*(c.slice(at, step) for c in cols), pa.scalar("\x1f", _STR))
        for s in joined.to_pylist():
            out += sha1(s.encode()).digest()
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(n, 20)


def _validate(
    raw: dict[str, pa.ChunkedArray], header: list[str], scan: _Scan, schema: Schema, name: str, warnings: list[str]
) -> pd.DataFrame:
    n = len(scan.lines)
    bag = _Problems(scan.lines, header)
    typed: dict[str, Any] = {}
    blank = {c.name: _np(pc.equal(raw[c.name], "")) for c in schema.columns}
    for col in schema.columns:
        typed[col.name] = _check_column(col, raw[col.name], blank[col.name], bag)
    for triple in schema.triples:
        warnings += _check_triple(triple, raw, typed, blank, bag)
    _check_dates(schema, raw, blank, bag)
    digests = _digests(raw, n)
    _check_duplicates(raw, digests, bag)

    frame = pd.DataFrame({c: typed.pop(c) if c in typed else str_series(raw[c]) for c in raw}, copy=False)
    with np.errstate(all="ignore"):  # rows with bad cells give NaN effects; they are reported anyway
        derived = derive_effects(frame, schema)
    for i, column, reason in se_floor_problems(derived, schema):
        if not bag.bad[i]:  # a row with another problem is judged after that one is fixed
            bag.add_one(i, column, reason, _cell(raw[column], i))
    if bag.total:
        raise EvidenceError(f"{name}: {schema.name} table is not valid", bag.listed())

    warnings += _invisible_warnings(schema, raw, header, scan.lines)
    if schema is TRIALS or schema is NETWORK:
        warnings += _registry_warnings(raw, scan.lines)
    derived.insert(0, "line_no", scan.lines.copy())
    derived.insert(0, "row_id", str_series(_row_ids(schema, raw, digests)))
    derived.attrs["warnings"] = warnings
    derived.attrs["source"] = name
    derived.attrs["schema"] = "reference" if schema is REFERENCE else "network" if schema is NETWORK else "trials"
    return derived


class _Problems:
    """Problems found by whole-column checks: the first :data:`MAX_PROBLEMS` by line are kept, all are counted."""

    def __init__(self, lines: np.ndarray, header: list[str]):
        self.lines = lines
        self.header = header
        self.items: list[Problem] = []
        self.total = 0
        self.bad = np.zeros(len(lines), dtype=bool)

    def add(self, mask: np.ndarray, column: str | None, make: Callable[[int], tuple[str, str | None]]) -> None:
        """One problem per True in ``mask``; ``make(i)`` gives (reason, value) for row index ``i``."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        self.total += len(idx)
        self.bad[idx] = True
        for i in idx[:MAX_PROBLEMS]:
            reason, value = make(int(i))
            self.items.append(Problem(reason, int(self.lines[i]), column, value))

    def add_one(self, i: int, column: str | None, reason: str, value: str | None) -> None:
        self.total += 1
        self.bad[i] = True
        self.items.append(Problem(reason, int(self.lines[i]), column, value))

    def listed(self) -> list[Problem]:
        order = {c: k for k, c in enumerate(self.header)}
        items = sorted(self.items, key=lambda p: (p.row or 0, order.get(p.column or "", -1)))[:MAX_PROBLEMS]
        if self.total > len(items):
            items.append(Problem(f"... and {self.total - len(items):,} more problems (fix the ones above first)"))
        return items


def _cell(col: pa.ChunkedArray, i: int) -> str:
    return col[i].as_py()


# --------------------------------------------------------------------------- header


def _normalise(name: str) -> str:
    """Lower case, without whitespace or invisible (format) characters: 'Events Total' -> 'eventstotal'."""
    return "".join(ch for ch in name.lower() if not ch.isspace() and unicodedata.category(ch) != "Cf")


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest_column(name: str, known: Iterable[str]) -> str | None:
    """The column of ``known`` that ``name`` was probably meant to be, or None.

    A match is equal ignoring case, whitespace and invisible characters, or one edit (insertion,
    deletion, substitution) away from it after that: ``Events_Total``, ``evnts_total``, ``events total``.
    """
    norm = _normalise(name)
    known = list(known)
    for k in known:
        if norm == _normalise(k):
            return k
    for k in known:
        if _edit_distance(norm, _normalise(k)) <= 1:
            return k
    return None


def _check_header(header: list[str], schema: Schema) -> tuple[list[Problem], list[str]]:
    problems: list[Problem] = []
    warnings: list[str] = []
    unknown = [h for h in header if h not in schema.names and h not in DERIVED_COLUMNS]
    suggested: dict[str, str] = {}
    for h in unknown:
        s = suggest_column(h, schema.names)
        # 'note' and 'notes' side by side are two columns on purpose; a lone 'notes' is a typo
        if s is not None and s not in header:
            suggested[h] = s
    missing = [c.name for c in schema.columns if c.required and c.name not in header]
    missing = [c for c in missing if c not in suggested.values()]
    if missing:
        problems.append(Problem(f"missing required column(s): {', '.join(missing)}"))
    for h, s in suggested.items():
        invisible = _invisible_chars(h)
        why = f" (the name contains {invisible})" if invisible else ""
        problems.append(Problem(f"unknown column: did you mean {s}?{why}", row=1, column=h))
    reserved = [h for h in header if h in DERIVED_COLUMNS]
    if reserved:
        problems.append(
            Problem(f"column(s) {', '.join(reserved)} are computed by harmoni_bayes and cannot be given in the file")
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        problems.append(Problem(f"duplicate column name(s): {', '.join(dupes)}"))
    kept = [h for h in unknown if h not in suggested]
    if kept:
        warnings.append(f"unknown column(s) kept as they are: {', '.join(kept)}")
    return problems, warnings


# --------------------------------------------------------------------------- cells


def _check_column(col: Column, values: pa.ChunkedArray, blank: np.ndarray, bag: _Problems) -> Any:
    if col.nonblank:
        bag.add(blank, col.name, lambda i: ("is required but blank", None))
    if col.kind in _NUMERIC_KINDS:
        return _check_numbers(col, values, blank, bag)
    if col.kind == "date":
        bad = ~blank & _bad_dates(values)
        bag.add(bad, col.name, lambda i: _reason("is not a real ISO date (YYYY-MM-DD)", values, i))
    elif col.kind == "choice":
        bad = ~blank & ~_np(pc.is_in(values, value_set=pa.array(col.choices, _STR)))
        bag.add(bad, col.name, lambda i: _reason(f"must be one of {', '.join(col.choices)}", values, i))
    return str_series(values)


def _reason(reason: str, values: pa.ChunkedArray, i: int) -> tuple[str, str]:
    v = _cell(values, i)
    invisible = _invisible_chars(v)
    return (f"{reason}; it contains {invisible}" if invisible else reason), v


def _bad_dates(values: pa.ChunkedArray) -> np.ndarray:
    """True where a non-blank cell is not a real YYYY-MM-DD date (checked once per distinct value)."""
    distinct = [v for v in pc.unique(values).to_pylist() if v]
    bad = [v for v in distinct if not is_iso_date(v)]
    if not bad:
        return np.zeros(len(values), dtype=bool)
    return _np(pc.is_in(values, value_set=pa.array(bad, _STR)))


def is_iso_date(v: str) -> bool:
    """True for a real calendar date written YYYY-MM-DD (ASCII digits)."""
    # fromisoformat alone would also accept week dates such as 2025-W10-6
    if not _ISO_DATE.match(v):
        return False
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _check_numbers(col: Column, values: pa.ChunkedArray, blank: np.ndarray, bag: _Problems) -> np.ndarray:
    plain = _np(pc.match_substring_regex(values, _PLAIN_NUMBER))
    parsed = pc.cast(pc.if_else(pa.array(plain), values, pa.scalar(None, _STR)), pa.float64())
    x = _np(parsed).astype(float, copy=True)  # nulls -> NaN
    text_bad = ~blank & ~plain
    bag.add(text_bad, col.name, lambda i: (_not_a_number(col.kind, _cell(values, i)), _cell(values, i)))
    with np.errstate(invalid="ignore"):
        infinite = plain & ~np.isfinite(x)
        bag.add(infinite, col.name, lambda i: ("is not a finite number", _cell(values, i)))
        ok = plain & np.isfinite(x)
        kind = col.kind
        if kind == "positive":
            bad = ok & (x <= 0)
            bag.add(bad, col.name, lambda i: ("must be positive", _cell(values, i)))
        elif kind == "count":
            bad = ok & ((x <= 0) | (x != np.floor(x)))
            bag.add(bad, col.name, lambda i: ("must be a positive whole number", _cell(values, i)))
        elif kind == "level":
            bad = ok & ~((x > 0) & (x < 1))
            bag.add(bad, col.name, lambda i: (_level_reason(x[i], _cell(values, i)), _cell(values, i)))
        elif kind == "fraction":
            bad = ok & ~((x > 0) & (x <= 1))
            bag.add(bad, col.name, lambda i: ("must be in (0, 1]", _cell(values, i)))
        elif kind == "rate":
            bad = ok & ~((x >= 0) & (x <= 1))
            bag.add(bad, col.name, lambda i: ("must be in [0, 1]", _cell(values, i)))
    x[~ok] = np.nan
    return x


def _level_reason(x: float, v: str) -> str:
    if 1 < x <= 100:
        return f"must be between 0 and 1: write {x / 100:g}, not {v}"
    return "must be between 0 and 1 (e.g. 0.95)"


def _not_a_number(kind: str, v: str) -> str:
    """'is not a number', with the likely cause when it can be told."""
    invisible = _invisible_chars(v)
    if invisible:
        return f"is not a number: it contains {invisible}; type the number again"
    if "_" in v:
        try:
            misread = f" (Python would read it as {float(v):g})"
        except ValueError:
            misread = ""
        return f"is not a plain number: '_' is not allowed in numbers{misread}"
    if "," in v:
        return "is not a number: use a decimal point (0.51, not 0,51), and no thousands separators"
    if v.endswith("%") and re.fullmatch(r"[0-9]+\.?[0-9]*", v[:-1]):
        if kind in ("level", "fraction", "rate"):
            return f"is not a number: write {float(v[:-1]) / 100:g}, not {v}"
        return "is not a number: percentages are not allowed here"
    if v.lower() in _NON_FINITE_WORDS:
        return "is not a number: write a finite number, or leave the cell blank"
    if any(ch.isdigit() and not ch.isascii() for ch in v):
        return "is not a number: use the digits 0-9"
    return "is not a number"


def half_unit(printed: str) -> float:
    """Half a unit in the last printed digit: '0.51' -> 0.005, '1.0' -> 0.05, '2' -> 0.5."""
    s = printed.strip().lower()
    if "e" in s:
        return 0.0
    decimals = len(s.split(".", 1)[1]) if "." in s else 0
    return 0.5 * 10.0 ** (-decimals)


def _half_units(values: pa.ChunkedArray) -> np.ndarray:
    """:func:`half_unit` of every cell (cells are stripped; only plain numbers are used)."""
    has_e = _np(pc.match_substring(values, "e", ignore_case=True))
    dot = _np(pc.find_substring(values, ".")).astype(np.int64)
    length = _np(pc.utf8_length(values)).astype(np.int64)
    decimals = np.clip(np.where(dot >= 0, length - dot - 1, 0), 0, 400)  # 10**-400 is 0.0 anyway
    # the table holds exactly the values half_unit computes (Python's float power)
    table = np.array([0.5 * 10.0 ** (-k) for k in range(int(decimals.max(initial=0)) + 1)])
    return np.where(has_e, 0.0, table[decimals])


def _check_triple(
    t: HRTriple, raw: dict[str, pa.ChunkedArray], typed: dict[str, Any], blank: dict[str, np.ndarray], bag: _Problems
) -> list[str]:
    """HR and CI together: both bounds or none, lower < upper, HR inside the CI up to printed rounding.

    Also warns when the CI is asymmetric on the log scale by more than rounding allows: the
    HR and CI may then come from different models (e.g. stratified HR, unstratified CI).
    """
    hr, lo, hi = (typed[c] for c in (t.hr, t.lower, t.upper))
    b_lo, b_hi = blank[t.lower], blank[t.upper]
    r_hr, r_lo, r_hi = raw[t.hr], raw[t.lower], raw[t.upper]
    one_bound = b_lo != b_hi
    bag.add(one_bound & b_lo, t.lower, lambda i: ("a CI needs both bounds; this one is blank", None))
    bag.add(one_bound & b_hi, t.upper, lambda i: ("a CI needs both bounds; this one is blank", None))
    rest = ~one_bound
    if t.level:
        bag.add(rest & ~b_lo & blank[t.level], t.level, lambda i: ("is required when a CI is given", None))
    with np.errstate(invalid="ignore"):
        valid = rest & np.isfinite(hr) & np.isfinite(lo) & np.isfinite(hi) & (np.fmin(np.fmin(hr, lo), hi) > 0)
        swapped = valid & ~(lo < hi)
    bag.add(
        swapped,
        t.lower,
        lambda i: (f"lower bound {_cell(r_lo, i)} is not below upper bound {_cell(r_hi, i)}", _cell(r_lo, i)),
    )
    ok = valid & ~swapped
    if not ok.any():
        return []
    d_hr, d_lo, d_hi = _half_units(r_hr), _half_units(r_lo), _half_units(r_hi)
    with np.errstate(invalid="ignore"):
        outside = ok & ((hr + d_hr < lo - d_lo) | (hr - d_hr > hi + d_hi))
    bag.add(
        outside,
        t.hr,
        lambda i: (f"HR {_cell(r_hr, i)} lies outside its CI {_cell(r_lo, i)}-{_cell(r_hi, i)}", _cell(r_hr, i)),
    )
    sym = ok & ~outside
    idx = np.flatnonzero(sym)
    with np.errstate(all="ignore"):
        h_lo = math_log(hr[idx] / lo[idx])
        h_hi = math_log(hi[idx] / hr[idx])
        tol = d_lo[idx] / lo[idx] + 2 * d_hr[idx] / hr[idx] + d_hi[idx] / hi[idx]  # first-order rounding box
    asym = np.flatnonzero(np.abs(h_hi - h_lo) > tol)
    warnings = []
    for k in asym[:MAX_WARNINGS_PER_KIND]:
        i = int(idx[k])
        warnings.append(
            f"line {bag.lines[i]}, column '{t.hr}': CI {_cell(r_lo, i)}-{_cell(r_hi, i)} is asymmetric around HR "
            f"{_cell(r_hr, i)} on the log scale (half-widths {h_lo[k]:.3f} vs {h_hi[k]:.3f}, rounding allows "
            f"{tol[k]:.3f}); SE is taken from the CI width"
        )
    return _capped(warnings, len(asym), "asymmetric CIs")


def _check_dates(schema: Schema, raw: dict[str, pa.ChunkedArray], blank: dict[str, np.ndarray], bag: _Problems):
    """A disclosure in the future, or a data cutoff after the disclosure, is a typo.

    Selection ranks analyses by these dates, so such a typo would let an interim analysis replace the final one.
    """
    if "disclosed" not in schema.names:
        return
    disclosed = raw["disclosed"]
    now = today().isoformat()
    valid_d = ~blank["disclosed"] & ~_bad_dates(disclosed)
    # ISO dates compare as strings
    future = valid_d & _np(pc.greater(disclosed, pa.scalar(now, _STR)))
    bag.add(
        future,
        "disclosed",
        lambda i: (f"is after today ({now}); a result cannot be disclosed in the future", _cell(disclosed, i)),
    )
    if "data_cutoff" in schema.names:
        cutoff = raw["data_cutoff"]
        valid_c = ~blank["data_cutoff"] & ~_bad_dates(cutoff)
        late = valid_d & valid_c & _np(pc.greater(cutoff, disclosed))
        bag.add(
            late,
            "data_cutoff",
            lambda i: (
                f"is after this row's disclosure date {_cell(disclosed, i)}; data cannot be cut after they "
                "were disclosed",
                _cell(cutoff, i),
            ),
        )


def _check_duplicates(raw: dict[str, pa.ChunkedArray], digests: np.ndarray, bag: _Problems) -> None:
    """Exact duplicate rows, found by sorting the rows' hashes and confirmed cell by cell."""
    keys = np.ascontiguousarray(digests).view("S20").ravel()
    order = np.argsort(keys, kind="stable")  # equal hashes stay in file order: the first comes first
    ranked = keys[order]
    same = np.flatnonzero(ranked[1:] == ranked[:-1]) + 1
    if not len(same):
        return
    group_start = np.maximum.accumulate(np.where(np.r_[True, ranked[1:] != ranked[:-1]], np.arange(len(keys)), 0))
    cols = list(raw.values())
    mask = np.zeros(len(keys), dtype=bool)
    of: dict[int, int] = {}
    for k in same:
        i, j = int(order[k]), int(order[group_start[k]])
        if all(_cell(c, i) == _cell(c, j) for c in cols):
            mask[i] = True
            of[i] = j
    bag.add(mask, None, lambda i: (f"exact duplicate of line {bag.lines[of[i]]}", None))


def _row_ids(schema: Schema, raw: dict[str, pa.ChunkedArray], digests: np.ndarray) -> pa.ChunkedArray:
    """``<trial>|<endpoint>|<factor>=<level>|<disclosed>|<hash6>`` (trials) or ``<trial>|OS <analysis>|<hash6>``.

    hash6 is the start of the sha1 of the row's stripped cells joined by U+001F, blanks for absent
    columns: the row ids that results, specs and reports refer to.  Never change this.
    """
    n = len(digests)
    hex_digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    first3 = digests[:, :3]
    chars = np.stack([hex_digits[first3 >> 4], hex_digits[first3 & 15]], axis=-1).reshape(-1)
    offsets = np.arange(0, 6 * n + 1, 6, dtype=np.int64)
    short = pa.Array.from_buffers(_STR, n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])

    def join(*parts, sep: str):
        return pc.binary_join_element_wise(*parts, pa.scalar(sep, _STR))

    if schema is TRIALS or schema is NETWORK:
        subgroup = join(raw["subgroup_factor"], raw["subgroup_level"], sep="=")
        return join(raw["trial"], raw["endpoint"], subgroup, raw["disclosed"], short, sep="|")
    first_word = pc.list_element(pc.split_pattern(raw["os_analysis"], " ", max_splits=1), 0)
    analysis = join(pa.repeat(pa.scalar("OS", _STR), n), pc.utf8_trim(first_word, "(),;"), sep=" ")
    return join(raw["trial"], analysis, short, sep="|")


# --------------------------------------------------------------------------- warnings


def _invisible_chars(v: str) -> str:
    """'U+200B (ZERO WIDTH SPACE)' for each invisible or bidirectional (format, Cf) character in ``v``."""
    found = sorted({ch for ch in v if not ch.isascii() and unicodedata.category(ch) == "Cf"})
    names = [f"U+{ord(ch):04X} ({unicodedata.name(ch, 'format character')})" for ch in found]
    if not names:
        return ""
    return ("invisible characters " if len(names) > 1 else "an invisible character ") + ", ".join(names)


def _invisible_warnings(
    schema: Schema, raw: dict[str, pa.ChunkedArray], header: list[str], lines: np.ndarray
) -> list[str]:
    """Text cells holding invisible or bidirectional characters: they look right and compare wrong."""
    text_cols = [c for c in header if c not in schema.names or schema.column(c).kind == "text"]
    out: list[str] = []
    total = 0
    for c in text_cols:
        # every format character is non-ASCII, so the Unicode class runs only on the other cells
        maybe = np.flatnonzero(~_np(pc.string_is_ascii(raw[c])))
        if not len(maybe):
            continue
        hit = maybe[_np(pc.match_substring_regex(raw[c].take(pa.array(maybe)), r"\p{Cf}"))]
        for i in hit.tolist():
            v = _cell(raw[c], i)
            found = _invisible_chars(v)  # Python's Unicode tables have the last word
            if not found:
                continue
            total += 1
            if len(out) < MAX_WARNINGS_PER_KIND:
                out.append(
                    f"line {lines[i]}, column '{c}': {v!r} contains {found}; "
                    "it looks like other text but does not compare equal to it"
                )
    return _capped(out, total, "cells with invisible characters")


def _registry_warnings(raw: dict[str, pa.ChunkedArray], lines: np.ndarray) -> list[str]:
    """One registry id under two trial names: a renamed trial splits its evidence, or an id is mistyped."""
    if "registry_id" not in raw:
        return []
    pairs = pd.DataFrame({"reg": str_series(raw["registry_id"]), "trial": str_series(raw["trial"]), "line": lines})
    pairs = pairs[pairs.reg != ""].drop_duplicates(["reg", "trial"])
    names = pairs.groupby("reg", sort=False).trial.transform("size")
    out: list[str] = []
    total = 0
    for reg, group in pairs[names > 1].groupby("reg", sort=False):
        total += 1
        if len(out) == MAX_WARNINGS_PER_KIND:
            continue
        listed = ", ".join(f"{t!r} (line {ln})" for t, ln in zip(group.trial[:5], group.line[:5], strict=True))
        more = f" and {len(group) - 5} more" if len(group) > 5 else ""
        out.append(
            f"column 'registry_id': {reg} is used under {len(group)} trial names: {listed}{more}; "
            "rows of one trial should share one name, or the registry id is wrong"
        )
    return _capped(out, total, "registry ids under several trial names")


def _capped(warnings: list[str], total: int, what: str) -> list[str]:
    """The first warnings of one kind, and a count of the others (see :data:`MAX_WARNINGS_PER_KIND`)."""
    if total <= len(warnings):
        return warnings
    return [*warnings, f"... and {total - len(warnings):,} more warnings about {what}"]


def evidence_summary(df: pd.DataFrame) -> str:
    """One line: how many rows, trials and usable estimates."""
    if df.attrs.get("schema") == "reference":
        usable = int((df.se_pfs.notna() & df.se_os.notna()).sum())
        return f"{len(df)} rows, {df.trial.nunique()} comparisons, {usable} with both PFS and OS standard errors"
    usable = int(df.usable.sum())
    return f"{len(df)} rows, {df.trial.nunique()} trials, {usable} usable estimates (log HR with SE)"
