"""Faults of the lake's disk: writes that died, file modes, a full disk, a read-only disk.

Issue 12, fault 7: a Deribit streaming write killed mid-way left ``.part-*.parquet.tmp`` that
no later run cleaned; lake files were created 0600; a read-only data dir gave a bare
``OSError`` and a full disk an SQLite "disk I/O error", never "disk full".
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.lib import lake


def test_stale_temp_files_are_swept_and_only_those(tmp_path):
    folder = tmp_path / "lake/raw/deribit/option_trades/date=2022-01-01"
    folder.mkdir(parents=True)
    old = [folder / ".part-abc.parquet.tmp", folder / ".tmp-xyz", tmp_path / "lake" / ".q-1"]
    young = folder / ".part-new.parquet.tmp"
    foreign = [folder / "part.parquet", folder / "notes.tmp", folder / ".part-x.parquet"]
    for path in [*old, young, *foreign]:
        path.write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    for path in [*old, *foreign]:
        os.utime(path, (two_hours_ago, two_hours_ago))

    swept = lake.sweep_stale_temp_files(tmp_path / "lake")
    assert sorted(swept) == sorted(old)
    assert young.exists() and all(p.exists() for p in foreign)


def test_a_write_sweeps_its_folder_of_a_dead_writes_temp_file(tmp_path):
    """The debris of a streaming write killed mid-way is gone after the next write there."""
    path = tmp_path / "date=2022-01-01" / "part.parquet"
    path.parent.mkdir()
    dead = path.parent / ".part-killed.parquet.tmp"
    dead.write_bytes(b"PAR1 half a file")
    os.utime(dead, (time.time() - 7200,) * 2)
    with lake.StreamingPartitionWriter(path, pa.schema([("x", pa.int64())])) as writer:
        writer.write(pa.table({"x": [1, 2]}))
        writer.commit()
    assert sorted(p.name for p in path.parent.iterdir()) == ["part.parquet"]


def test_lake_files_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        table = pa.table({"x": [1]})
        lake.write_parquet_atomic(table, tmp_path / "a.parquet")
        lake.write_bytes_atomic(b"{}", tmp_path / "b.json")
        with lake.StreamingPartitionWriter(tmp_path / "c.parquet", table.schema) as writer:
            writer.write(table)
            writer.commit()
    finally:
        os.umask(previous)
    for name in ("a.parquet", "b.json", "c.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own (root only: CI and the developers' machines run as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()


KLINES = dg.AssetKey("binance_klines_1h")


def failure_of(result) -> str:
    (failure,) = result.get_step_failure_events()
    return failure.step_failure_data.error.to_string()


def test_a_full_disk_is_said_as_such_and_the_partition_kept(
    small_disk, data_dir, replay, instance, monkeypatch
):
    from tests.test_monitoring import pull

    monkeypatch.setenv("MKT_DATA_DIR", str(small_disk / "data"))
    defs = build_definitions()
    assert pull(defs, instance, KLINES, "2023-01-10").success
    path = small_disk / "data/lake/raw/binance/klines_1h/date=2023-01-10/part.parquet"
    before = path.read_bytes()
    fill(small_disk)
    result = pull(defs, instance, KLINES, "2023-01-10")
    assert not result.success
    text = failure_of(result)
    assert "LakeWriteError" in text and "disk full" in text and str(path) in text, text
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"], "no temp file left"


def test_a_read_only_disk_is_said_as_such(small_disk, data_dir, replay, instance, monkeypatch):
    from tests.test_monitoring import pull

    monkeypatch.setenv("MKT_DATA_DIR", str(small_disk / "data"))
    defs = build_definitions()
    assert pull(defs, instance, KLINES, "2023-01-10").success
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = pull(defs, instance, KLINES, "2023-01-11")
    assert not result.success
    text = failure_of(result)
    assert "LakeWriteError" in text and "read-only" in text, text


def test_the_cli_on_a_full_disk_says_disk_full_not_a_traceback(small_disk, capsys, monkeypatch):
    """Lake, warehouse and the SQLite instance all on one full disk: the CLI's error is
    "disk full" with the folder, exit 1, and no traceback."""
    from mkt_platform import cli
    from tests.conftest import SHARED_DATA

    for name in [k for k in os.environ if k.startswith(("DAGSTER_", "MKT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MKT_DATA_DIR", str(small_disk / "data"))
    (small_disk / "data").mkdir()
    fill(small_disk)
    code = cli.main(
        [
            "materialize",
            "--start",
            "2023-01-10",
            "--end",
            "2023-01-10",
            "--replay",
            str(SHARED_DATA),
        ]
    )
    out = capsys.readouterr()
    assert code == 1, out.out[-2000:] + out.err[-2000:]
    assert "error: disk full" in out.err and str(small_disk) in out.err, out.err[-2000:]
    assert "Traceback" not in out.err + out.out
