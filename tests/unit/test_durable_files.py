import sqlite3
from pathlib import Path

import pytest

from vmt.durable_files import atomic_path, atomic_writer, copy_atomic, write_atomic
from vmt.sqlite_db import SYNCHRONOUS, ThreadConnections, transaction


def test_write_replaces_the_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "metrics.json"
    write_atomic(target, b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "rows.ndjson"
    write_atomic(target, b"complete\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as out:
        out.write(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rows.ndjson"]


def test_atomic_path_for_libraries_that_write_by_name(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"x" * 10)
    copy_atomic(source, tmp_path / "b.bin")
    with atomic_path(tmp_path / "c.bin") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".partial")
        tmp.write_bytes(b"c")
    assert (tmp_path / "b.bin").read_bytes() == b"x" * 10
    assert (tmp_path / "c.bin").read_bytes() == b"c"


def test_sqlite_connections_have_the_stated_durability(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "state.sqlite")
    conn = connections.get()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    assert levels[conn.execute("PRAGMA synchronous").fetchone()[0]] == SYNCHRONOUS == "FULL"
    conn.execute("CREATE TABLE t (x)")
    with pytest.raises(sqlite3.IntegrityError), transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        raise sqlite3.IntegrityError("rolled back")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    connections.close_all()
