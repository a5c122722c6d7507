"""``evidence add`` and the file system: links, read-only targets, failed writes, concurrent writers."""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from harmoni_bayes import append
from harmoni_bayes.append import append_evidence
from harmoni_bayes.errors import EvidenceError
from harmoni_bayes.evidence import read_evidence, shipped_path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX links, modes and flock")


@pytest.fixture
def target_and_new(trials_table, write_csv):
    rows = trials_table[1]
    return write_csv(rows[:3], name="target.csv"), write_csv(rows[3:5], name="new.csv")


# --------------------------------------------------------------------------- links


def test_add_through_a_symlink_updates_the_real_file_and_keeps_the_link(target_and_new, tmp_path):
    target, new = target_and_new
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    before = target.read_bytes()
    assert append_evidence(new, link) == 2
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.read_bytes().startswith(before) and len(read_evidence(target)) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "new.csv", "target.csv"]


def test_add_through_a_relative_symlink_in_another_directory(target_and_new, tmp_path):
    target, new = target_and_new
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "link.csv").symlink_to(Path("..") / "target.csv")
    append_evidence(new, sub / "link.csv")
    assert (sub / "link.csv").is_symlink() and len(read_evidence(target)) == 5


def test_add_through_a_hard_link_writes_into_the_shared_file(target_and_new, tmp_path):
    target, new = target_and_new
    other = tmp_path / "other.csv"
    os.link(target, other)
    inode = target.stat().st_ino
    append_evidence(new, other)
    assert target.stat().st_ino == other.stat().st_ino == inode
    assert target.stat().st_nlink == 2
    assert target.read_bytes() == other.read_bytes()
    assert len(read_evidence(target)) == 5


def test_add_to_a_dangling_symlink_is_not_found(target_and_new, tmp_path):
    _, new = target_and_new
    link = tmp_path / "dangling.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(EvidenceError, match="not found"):
        append_evidence(new, link)
    assert link.is_symlink() and not (tmp_path / "nowhere.csv").exists()


# --------------------------------------------------------------------------- read-only, failures


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555])
def test_a_read_only_target_is_refused_and_left_alone(target_and_new, mode):
    target, new = target_and_new
    before = target.read_bytes()
    target.chmod(mode)
    try:
        with pytest.raises(EvidenceError, match="read-only") as info:
            append_evidence(new, target)
        assert f"mode {mode:03o}" in str(info.value)
        assert target.read_bytes() == before
        assert stat.S_IMODE(target.stat().st_mode) == mode
    finally:
        target.chmod(0o644)


def test_a_read_only_target_behind_a_symlink_is_refused(target_and_new, tmp_path):
    target, new = target_and_new
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    target.chmod(0o444)
    try:
        with pytest.raises(EvidenceError, match="read-only"):
            append_evidence(new, link)
    finally:
        target.chmod(0o644)


def test_a_target_that_is_not_a_regular_file_is_refused(target_and_new, tmp_path):
    _, new = target_and_new
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(EvidenceError, match="not a regular file"):
        append_evidence(new, fifo)


def test_a_failed_write_leaves_the_target_byte_identical(target_and_new, monkeypatch):
    target, new = target_and_new
    before = target.read_bytes()
    real_write = os.write

    def half_then_disk_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))  # some bytes reach the file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(append.os, "write", half_then_disk_full)
    with pytest.raises(EvidenceError, match="No space left on device") as info:
        append_evidence(new, target)
    assert "left as it was" in str(info.value)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert append_evidence(new, target) == 2  # the lock was released


def test_an_interrupted_write_leaves_the_target_byte_identical(target_and_new, monkeypatch):
    target, new = target_and_new
    before = target.read_bytes()

    real_fsync, calls = os.fsync, []

    def interrupted_once(fd):
        calls.append(fd)
        if len(calls) == 1:  # Ctrl-C after the bytes were written, before they were flushed
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(append.os, "fsync", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        append_evidence(new, target)
    assert target.read_bytes() == before


def test_an_invalid_add_leaves_the_target_byte_identical(target_and_new, write_csv, make_row):
    target, _ = target_and_new
    before = target.read_bytes()
    bad = write_csv([make_row(5), make_row(6, hr="0_51")], name="bad.csv")
    with pytest.raises(EvidenceError) as info:
        append_evidence(bad, target)
    assert [(p.row, p.column) for p in info.value.problems] == [(6, "hr")]
    assert target.read_bytes() == before


def test_a_misspelled_column_in_the_new_file_is_named(target_and_new, trials_table, write_csv):
    target, _ = target_and_new
    header, rows = trials_table
    wrong = ["evnts_total" if h == "events_total" else h for h in header]
    new = write_csv(rows[6:7], header=wrong, name="wrong.csv")
    with pytest.raises(EvidenceError, match="did you mean events_total"):
        append_evidence(new, target)


# --------------------------------------------------------------------------- the lock


def test_an_add_waits_for_the_lock_and_gives_up_after_the_timeout(target_and_new, monkeypatch):
    import fcntl

    target, new = target_and_new
    before = target.read_bytes()
    monkeypatch.setattr(append, "LOCK_TIMEOUT", 0.3)
    with open(target, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        t0 = time.monotonic()
        with pytest.raises(EvidenceError, match="another 'evidence add'"):
            append_evidence(new, target)
        assert time.monotonic() - t0 >= 0.3
    assert target.read_bytes() == before
    assert append_evidence(new, target) == 2


def test_a_target_replaced_while_waiting_is_locked_again_and_appended_to(target_and_new, trials_table, write_csv):
    import fcntl

    target, new = target_and_new
    replacement = write_csv(trials_table[1][10:12], name="replacement.csv")
    done: list[object] = []
    with open(target, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: done.append(append_evidence(new, target)))
        worker.start()
        time.sleep(0.2)
        os.replace(replacement, target)  # an editor saving by rename while the add waits
    worker.join(10)
    assert done == [2]
    df = read_evidence(target)
    assert len(df) == 4 and df.hr.tolist()[:2] == [float(r[12]) for r in trials_table[1][10:12]]


def test_a_reader_waits_while_an_add_holds_the_file(target_and_new, trials_table):
    import csv
    import fcntl
    import io

    target, _ = target_and_new
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(trials_table[1][7])
    seen: list[int] = []
    with open(target, "ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as evidence add holds it while it validates and appends
        reader = threading.Thread(target=lambda: seen.append(len(read_evidence(target))))
        reader.start()
        time.sleep(0.3)
        assert seen == []  # still waiting
        held.write(buf.getvalue().encode())
    reader.join(10)
    assert seen == [4]  # the reader saw the file after the append, never half of it


# --------------------------------------------------------------------------- concurrent adds

WORKERS = 4
ROWS_PER_ADD = 2


def _note(worker: int, rnd: int, k: int) -> str:
    return f"w{worker}-r{rnd}-k{k}"


def _make_round(directory: Path, rnd: int) -> None:
    """Round ``rnd``: a target with two rows, and one new file of two distinct rows per worker."""
    import csv

    with open(shipped_path("ivonescimab_trials.csv"), newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    note = header.index("note")

    def write(path: Path, body: list[list[str]]) -> None:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body)

    target = directory / f"target-{rnd}.csv"
    write(target, rows[:2])
    # some workers reach the file through a symlink or a hard link: one lock must cover every name
    (directory / f"symlink-{rnd}.csv").symlink_to(target.name)
    os.link(target, directory / f"hardlink-{rnd}.csv")
    for w in range(WORKERS):
        body = []
        for k in range(ROWS_PER_ADD):
            row = list(rows[2 + k])
            row[note] = _note(w, rnd, k)
            body.append(row)
        write(directory / f"new-{rnd}-{w}.csv", body)


def _worker(directory: str, worker: int, rounds: int, barrier, results) -> None:
    name = ["target", "symlink", "hardlink"][worker % 3]
    for rnd in range(rounds):
        barrier.wait()  # all workers start each round's add together
        try:
            append_evidence(Path(directory) / f"new-{rnd}-{worker}.csv", Path(directory) / f"{name}-{rnd}.csv")
            results.put((worker, rnd, "ok"))
        except Exception as exc:  # reported to the test process, which fails with it
            results.put((worker, rnd, repr(exc)))


def run_concurrent_adds(directory: Path, rounds: int) -> list[str]:
    """``WORKERS`` processes add different rows into one file, ``rounds`` times; return what went wrong."""
    for rnd in range(rounds):
        _make_round(directory, rnd)
    ctx = mp.get_context("spawn")  # no fork: pyarrow and BLAS keep threads
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(directory), w, rounds, barrier, results)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in range(WORKERS * rounds)]
    for p in procs:
        p.join(60)
    failures = [f"worker {w} round {r}: {o}" for w, r, o in outcomes if o != "ok"]
    for rnd in range(rounds):
        target = directory / f"target-{rnd}.csv"
        if not (directory / f"symlink-{rnd}.csv").is_symlink() or target.stat().st_nlink != 2:
            failures.append(f"round {rnd}: a link was replaced")
        df = read_evidence(target)
        expected = sorted(_note(w, rnd, k) for w in range(WORKERS) for k in range(ROWS_PER_ADD))
        got = sorted(n for n in df.note if n.startswith("w"))
        if got != expected or len(df) != 2 + len(expected):
            failures.append(f"round {rnd}: {len(df)} rows, notes {got}")
        # a batch is never split: each worker's rows are adjacent
        notes = df.note.tolist()
        for w in range(WORKERS):
            at = [i for i, n in enumerate(notes) if n.startswith(f"w{w}-")]
            if at and at != list(range(at[0], at[0] + ROWS_PER_ADD)):
                failures.append(f"round {rnd}: batch of worker {w} split at rows {at}")
    return failures


def test_concurrent_adds_keep_every_row_exactly_once(tmp_path):
    assert run_concurrent_adds(tmp_path, rounds=5) == []
    assert not list(tmp_path.glob(".*")), "no lock or temporary files are left behind"


@pytest.mark.slow
def test_concurrent_adds_200_rounds(tmp_path):
    assert run_concurrent_adds(tmp_path, rounds=200) == []
