"""The raw lake and the warehouse's data files on S3-compatible object storage (issue 15,
item 4), by configuration alone: ``MKT_LAKE_URL=s3://bucket/prefix``, a DuckLake warehouse
with ``MKT_DUCKLAKE_DATA_PATH=s3://bucket/prefix/``, the server and credentials in the AWS
SDKs' environment names.

The store is a local S3-API server the tests start: moto's server mode (``moto.server``),
which emulates the S3 API in memory (buckets, objects, multipart uploads, CopyObject) on
one port; nothing is written to disk and nothing leaves the machine. It is the S3-compatible
server these package registries have; the same code talks to AWS, MinIO or Ceph by changing
only the endpoint.

Data: the real Binance BTCUSDT/ETHUSDT/SOLUSDT 1h klines of 2024-04-01
(``../shared/data/binance/klines_*_1h_2024-04.json``), Amberdata's recording of every BTC
option trade of 2024-04-01 00:00-02:00 and Deribit's DVOL for that day, through the replay.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from mkt_platform import settings, warehouse
from mkt_platform.lib import lake
from tests.conftest import materialize_days
from tests.test_ducklake_warehouse import marts

DAY = date(2024, 4, 1)
ONLY = ("binance_klines_1h", "deribit_option_trades", "deribit_volatility_index")
BUCKET = "mkt-lake"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    key_id: str
    secret: str

    def filesystem(self) -> pafs.S3FileSystem:
        return pafs.S3FileSystem(
            access_key=self.key_id,
            secret_key=self.secret,
            endpoint_override=self.endpoint.removeprefix("http://"),
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )

    def environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", self.key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", self.secret)
        monkeypatch.setenv("AWS_REGION", "us-east-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """moto's S3-API server (in memory) on a free local port, with the bucket created."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, "moto.server exited"
                assert time.monotonic() < deadline, "moto.server did not listen within 30 s"
                time.sleep(0.05)
        server = S3Server(f"http://127.0.0.1:{port}", "mkt-test-key", secrets.token_hex(20))
        server.filesystem().create_dir(BUCKET)
        yield server
    finally:
        process.terminate()
        process.wait(10)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _objects(fs: pafs.FileSystem, prefix: str) -> dict[str, bytes]:
    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    out = {}
    for info in infos:
        if info.type == pafs.FileType.File:
            with fs.open_input_stream(info.path) as stream:
                out[info.path.removeprefix(prefix + "/")] = stream.read()
    return out


def assert_same_marts(got: dict[str, list[tuple]], expected: dict[str, list[tuple]]) -> None:
    """Every mart, every row equal: each DECIMAL, integer, text and timestamp exactly; each
    DOUBLE (implied volatilities, greeks and what is summed from them) to 1e-12 relative.
    DuckDB sums doubles in parallel, in an order that varies from run to run, so two builds
    of the same lake differ in their last bits there (measured: 1e-15 relative at most)."""
    assert sorted(got) == sorted(expected)
    for name, rows in expected.items():
        assert len(got[name]) == len(rows), name
        for got_row, row in zip(got[name], rows, strict=True):
            for a, b in zip(got_row, row, strict=True):
                if isinstance(b, float) and isinstance(a, float):
                    assert a == pytest.approx(b, rel=1e-12, abs=1e-300), (name, row)
                else:
                    assert a == b, (name, row)


def _build(instance: dg.DagsterInstance) -> None:
    results = materialize_days(DAY, DAY, instance, only=ONLY)
    assert results and all(r.success for r in results), [(r.step.label, r.success) for r in results]


@pytest.mark.slow
def test_the_main_job_on_s3_gives_the_marts_of_a_local_run_value_for_value(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    # The reference: today's default, a local lake and the DuckDB file.
    with dg.DagsterInstance.ephemeral() as instance:
        _build(instance)
    with warehouse.connect() as con:
        local_marts = marts(con)
    local_lake = _files(data_dir / "lake" / "raw")
    assert {"session_ohlc_daily", "option_ohlc_hourly", "dvol_daily"} <= set(local_marts)
    assert local_marts["option_ohlc_hourly"] and local_marts["session_ohlc_daily"]

    # The same job with the lake and the DuckLake's data files on the S3 server.
    s3_data = tmp_path / "s3_run"
    monkeypatch.setenv("MKT_DATA_DIR", str(s3_data))
    s3_server.environment(monkeypatch)
    monkeypatch.setenv("MKT_LAKE_URL", f"s3://{BUCKET}/lake/")  # a trailing / is tolerated
    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    monkeypatch.setenv("MKT_DUCKLAKE_DATA_PATH", f"s3://{BUCKET}/warehouse")
    with dg.DagsterInstance.ephemeral() as instance:
        _build(instance)
        logged = "\n".join(
            str(record) for run in instance.get_runs() for record in instance.all_logs(run.run_id)
        )
    with warehouse.connect() as con:
        s3_marts = marts(con)
        data_files = [
            path
            for (path,) in con.execute(
                f"select data_file from ducklake_list_files('{warehouse.DATABASE}', "
                "'option_greeks', schema => 'marts')"
            ).fetchall()
        ]

    fs = s3_server.filesystem()
    assert_same_marts(s3_marts, local_marts)
    # The raw lake is on S3, object for object the local run's files, byte for byte (the
    # Parquet writes are deterministic); none is under the local data directory.
    s3_lake = _objects(fs, f"{BUCKET}/lake/raw")
    assert s3_lake == local_lake
    assert not (s3_data / "lake" / "raw").exists()
    # The DuckLake's tables are Parquet files on S3; only its SQLite catalog is local.
    assert data_files and all(p.startswith(f"s3://{BUCKET}/warehouse/") for p in data_files)
    assert not (s3_data / "warehouse_files").exists()
    assert _objects(fs, f"{BUCKET}/warehouse")
    # The secret is in no log, event or file the platform wrote.
    assert s3_server.secret not in logged
    written = [p for p in s3_data.rglob("*") if p.is_file()]
    assert written and not [p for p in written if s3_server.secret.encode() in p.read_bytes()]


# A child that writes a 64 MiB object to the lake on S3 (a multipart upload of several
# parts), in the way a raw partition is written; the test kills it during the upload.
_UPLOADER = textwrap.dedent(
    """
    import os, sys
    from mkt_platform.lib import lake
    path = lake.lake_root() / "raw" / "test" / "big" / "date=2024-04-01" / "part.parquet"
    lake.write_bytes_atomic(os.urandom(64 * 1024 * 1024), path)
    print("finished", flush=True)
    """
)


def test_a_killed_upload_never_leaves_a_partial_object_under_the_final_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    """An object store has no rename: the write uploads whole to a temporary key, then the
    server copies it to the final key. Killed mid-upload (SIGKILL, no clean-up), the final
    key keeps its previous object, byte for byte; what is left is an incomplete multipart
    upload no listing shows, and the sweep deletes any stale temporary object."""
    import boto3

    s3_server.environment(monkeypatch)
    monkeypatch.setenv("MKT_LAKE_URL", f"s3://{BUCKET}/killed")
    final = lake.lake_root() / "raw" / "test" / "big" / "date=2024-04-01" / "part.parquet"
    assert isinstance(final, lake.ObjectPath)
    previous = b"the previous partition file"
    lake.write_bytes_atomic(previous, final)

    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.key_id,
        aws_secret_access_key=s3_server.secret,
        region_name="us-east-1",
    )
    child = subprocess.Popen(
        [sys.executable, "-c", _UPLOADER],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not client.list_multipart_uploads(Bucket=BUCKET).get("Uploads"):
            assert child.poll() is None, "the upload finished before it could be killed"
            assert time.monotonic() < deadline, "no multipart upload started within 60 s"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL

    assert final.exists()
    fs = s3_server.filesystem()
    with fs.open_input_stream(final.key) as stream:
        assert stream.read() == previous
    # The interrupted upload went to a temporary key beside the final one, never to it.
    uploads = client.list_multipart_uploads(Bucket=BUCKET)["Uploads"]
    assert uploads and all(u["Key"] != final.key.removeprefix(f"{BUCKET}/") for u in uploads)
    assert all(u["Key"].rsplit("/", 1)[-1].startswith(".tmp-") for u in uploads)
    # A whole temporary object left by a write that died is swept once stale.
    stale = final.parent / ".tmp-left-by-a-dead-write"
    with fs.open_output_stream(stale.key) as stream:
        stream.write(b"x")
    assert lake.sweep_stale_temp_files(lake.lake_root(), older_than_seconds=3600) == []
    assert lake.sweep_stale_temp_files(lake.lake_root(), older_than_seconds=0) == [stale]
    assert sorted(_objects(fs, f"{BUCKET}/killed")) == ["raw/test/big/date=2024-04-01/part.parquet"]
    # A table written again reads back equal, through the same path a raw asset takes.
    table = pa.table({"open_time": [1, 2, 3], "close": ["1.5", "2.5", "3.5"]})
    size = lake.write_parquet_atomic(table, final)
    assert lake.read_table(final).equals(table) and final.stat().st_size == size


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"MKT_LAKE_URL": "https://bucket.example/lake"}, "MKT_LAKE_URL must be s3://"),
        ({"MKT_LAKE_URL": "s3://key:secret-value@bucket/lake"}, "MKT_LAKE_URL must be s3://"),
        (
            {"MKT_LAKE_URL": "s3://bucket/lake", "AWS_ACCESS_KEY_ID": "only-the-key-id"},
            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            {"MKT_LAKE_URL": "s3://bucket/lake", "AWS_ENDPOINT_URL": "minio:9000"},
            "must be http(s)://host[:port]",
        ),
    ],
)
def test_s3_settings_that_cannot_work_are_refused_before_any_pull(
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    refused: str,
) -> None:
    from mkt_platform import cli

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["materialize", "--start", "2024-04-01", "--end", "2024-04-01"]) == 2
    err = capsys.readouterr().err
    assert refused in err and "secret-value" not in err
    assert not (data_dir / "lake").exists()
    with pytest.raises(settings.SettingError):
        settings.lake_url() if "LAKE" in refused else settings.s3_settings()


def test_the_capture_closes_its_hours_on_s3_and_dagster_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    """The capture service's sink with the lake on S3: minutes merged into the hour's
    ``open.parquet`` object, the hour closed as ``part.parquet`` when a later hour starts
    (nothing under ``open.parquet`` is left for it), a late row merged into the closed hour,
    and the closed hours read back by Dagster's sensors from the store. SYNTHETIC candle
    pushes, as in ``tests/test_candles_1m.py``; nothing lands on the local disk."""
    from mkt_platform.capture.frames import CANDLES, parse
    from mkt_platform.capture.sink import HourlySink
    from mkt_platform.defs.capture.definitions import capture_gap_sensor, capture_hours_sensor
    from tests.test_candles_1m import captured_minutes, push

    s3_server.environment(monkeypatch)
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MKT_LAKE_URL", f"s3://{BUCKET}/capture")
    universe = tmp_path / "instruments.yaml"
    universe.write_text(
        "instruments:\n  - {venue: hyperliquid, instrument: BTC, base: BTC, quote: USDC, "
        "market: perp, intervals: [1m]}\n"
    )
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(universe))
    sink = HourlySink(CANDLES, lake.lake_root())
    minutes = captured_minutes()  # 2026-01-04 23:58 .. 2026-01-05 12:00, a 5-minute gap
    for t in minutes:
        for _, row in parse("hyperliquid", push(t, 0), t):
            sink.add(row)
    sink.add(parse("hyperliquid", push(minutes[0], 1), minutes[0])[0][1])  # late: 23:58 again
    sink.flush(before=minutes[-1])  # the late row merged; 12:00 still buffered

    fs = s3_server.filesystem()
    prefix = f"{BUCKET}/capture/raw/hyperliquid/candles_1m_stream"
    objects = sorted(
        i.path.removeprefix(prefix + "/")
        for i in fs.get_file_info(pafs.FileSelector(prefix, recursive=True))
        if i.type == pafs.FileType.File
    )
    # 12:00 is still buffered: every hour it follows is closed, none left open
    assert objects == [
        "date=2026-01-04/hour=23/part.parquet",
        "date=2026-01-05/hour=00/part.parquet",
        "date=2026-01-05/hour=10/part.parquet",
        "date=2026-01-05/hour=11/part.parquet",
    ]
    late_hour = lake.read_table(
        lake.lake_root()
        / "raw"
        / "hyperliquid"
        / "candles_1m_stream"
        / "date=2026-01-04"
        / "hour=23"
        / "part.parquet"
    )
    assert late_hour.num_rows == 2
    assert late_hour["close"].to_pylist()[0] == Decimal(push(minutes[0], 1)["data"]["c"])
    assert not (tmp_path / "data" / "lake" / "raw").exists()

    hours = capture_hours_sensor(dg.build_sensor_context())
    assert {e.partition: e.metadata["dagster/row_count"].value for e in hours.asset_events} == {
        "2026-01-04-23:00": 2,
        "2026-01-05-00:00": 2,
        "2026-01-05-10:00": 55,
        "2026-01-05-11:00": 60,
    }
    monkeypatch.setattr(settings, "utcnow", lambda: datetime(2026, 1, 5, 12, 30, tzinfo=UTC))
    gaps = capture_gap_sensor(dg.build_sensor_context())
    assert [r.partition_key for r in gaps.run_requests] == ["2026-01-04", "2026-01-05"]
