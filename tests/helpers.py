"""Plain helpers shared by test modules (fixtures live in conftest.py)."""

import csv
import io

from harmoni_bayes.evidence import shipped_path


def shipped_header_and_row() -> tuple[list[str], list[str]]:
    """The shipped HARMONi table's header and its first data row."""
    with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as fh:
        header, first, *_ = csv.reader(fh)
    return header, list(first)


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()
