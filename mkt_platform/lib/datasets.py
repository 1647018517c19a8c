"""The raw-dataset spec: each raw dataset is declared once, and everything about it derives
from that declaration.

A venue declares its datasets in ``mkt_platform/defs/<venue>/datasets.py`` as a tuple
``DATASETS`` of :class:`RawDataset` (found by :func:`mkt_platform.defs.registry.raw_datasets`).
From a spec come:

* the raw asset (:meth:`RawDataset.asset`): key ``<venue>_<dataset>``, group ``raw_<venue>``,
  daily UTC partitions and week-per-run backfills, the description, the column schema with
  units, the lake path, the data-quality checks of its kind (:data:`raw.QUALITY_CHECKS`), the
  owner, and the tags the monitors select on;
* its freshness check (``freshness``), the late-data re-pulls, the schema-drift watch and the
  column schema change check (``mkt_platform/defs/monitoring``), and its refresh schedule
  (``mkt_platform/defs/automation``), each taking the datasets from the registry;
* schedules of its own (a gap repair), from :attr:`RawDataset.schedules`.

Adding a dataset is a spec in its venue's folder and a dbt staging model: nothing else.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from mkt_platform import settings
from mkt_platform.lib import lake, raw
from mkt_platform.lib.partitions import raw_backfill_policy, raw_daily_partitions_def

#: Tag on every raw asset: its venue (monitors may select raw assets by it).
VENUE_TAG = "mkt/venue"
#: Tag on every raw asset: the dataset's name in the lake (``klines_1h``).
DATASET_TAG = "mkt/dataset"
#: Tag of raw assets that snapshot the present and can never be back-filled (``true``).
SNAPSHOT_TAG = "mkt/snapshot"
#: Owner of the raw assets unless a spec names another.
DEFAULT_OWNER = "team:market-data"

#: A function ``(client, partition_keys, now) -> {partition_key: table}``: what a pull at
#: ``now`` would write for each closed partition, in one range for all of them.
DayTables = Callable[[Any, list[str], datetime], dict[str, pa.Table]]


@dataclass(frozen=True)
class Freshness:
    """How fresh a raw dataset must be (see ``mkt_platform/defs/monitoring/freshness.py``).

    Attributes:
        tolerance: how late the latest closed partition, and the newest record beyond its
            interval, may be.
        interval: the data's own interval (a candle's length; one hour for trades and
            funding records).
        newest_field: the materialization metadata entry holding the newest record's time
            (UTC seconds), or ``None`` to judge the partitions only (a market with closed
            hours: its newest record is old every night and weekend).
    """

    tolerance: timedelta
    interval: timedelta
    newest_field: str | None


@dataclass(frozen=True)
class Refresh:
    """A refresh schedule shared by datasets: every tick pulls today's UTC partition, and
    yesterday's until a pull made after midnight has closed it; a snapshot dataset
    (:attr:`RawDataset.snapshot`) is taken in today's run only (``mkt_platform/defs/automation``).
    One run a tick for all of them: one process start, not one per dataset."""

    name: str
    cron: str
    description: str


@dataclass(frozen=True)
class RawDataset:
    """One raw dataset of one venue.

    Attributes:
        venue: the exchange, lower case (``binance``); the lake folder and group.
        dataset: the dataset's name in the lake (``klines_1h``); the asset key is
            ``<venue>_<dataset>``.
        description: the asset's description: the source endpoint, units, partitioning.
        resource: the key of the venue's client resource the pull uses.
        compute: the pull, ``(context, client) -> MaterializeResult`` (or
            ``(context, client, config)`` when ``config`` is set).
        schema: the Parquet schema of a partition file (``None`` when it varies).
        columns: each column's description, with units.
        quality: the kind of data-quality checks (a key of :data:`raw.QUALITY_CHECKS`), or
            ``None`` for none.
        freshness: the partition-aware freshness rule (checked by the freshness sensor), or
            ``None`` when it has none.
        freshness_policy: Dagster's own freshness policy, where its semantics fit (a
            snapshot: "materialized within the last N hours", whatever the partition).
        late_data: re-pull function for the late-data sensor, or ``None`` when a closed
            partition cannot change at the exchange (or cannot be re-pulled).
        refresh: the refresh schedule pulling its recent partitions (a snapshot: taking it
            into today's partition), or ``None``.
        config: the run configuration class the pull takes, or ``None``.
        schedules: a function of the built asset returning schedules of its own.
        snapshot: only today's partition can be taken, in a run of its own partition (no
            backfill, no history).
        owners: the asset's owners.
        partitions: the asset's partitions when not the UTC days (a function, so that the
            definition is built with the definitions): the NYSE trading days of the equity
            datasets.
        deps: the raw assets the pull reads from the lake (same partitions: the SPY options
            contracts are chosen around SPY's open of the same day).
    """

    venue: str
    dataset: str
    description: str
    resource: str
    compute: Callable[..., dg.MaterializeResult]
    schema: pa.Schema | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    quality: str | None = None
    freshness: Freshness | None = None
    freshness_policy: dg.FreshnessPolicy | None = None
    late_data: DayTables | None = None
    refresh: Refresh | None = None
    config: type[dg.Config] | None = None
    schedules: Callable[[dg.AssetsDefinition], Sequence[dg.ScheduleDefinition]] | None = None
    snapshot: bool = False
    owners: tuple[str, ...] = (DEFAULT_OWNER,)
    partitions: Callable[[], dg.PartitionsDefinition] | None = None
    deps: tuple[dg.AssetKey, ...] = ()

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(f"{self.venue}_{self.dataset}")

    @property
    def name(self) -> str:
        """The asset key as a string (``binance_klines_1h``)."""
        return self.key.to_user_string()

    @property
    def group(self) -> str:
        return f"raw_{self.venue}"

    def column_schema(self, schema: pa.Schema | None = None) -> dg.TableSchema:
        """The Dagster column schema of ``schema`` (default: the declared one), described."""
        return raw.column_schema(schema if schema is not None else self.schema, self.columns)

    def asset(self) -> dg.AssetsDefinition:
        """The raw asset: daily UTC partitions (or :attr:`partitions`), its quality checks,
        described and tagged."""
        metadata: dict[str, Any] = {
            "lake_path": dg.MetadataValue.path(lake.raw_dataset_glob(self.venue, self.dataset))
        }
        if self.schema is not None:
            metadata["dagster/column_schema"] = self.column_schema()
        tags = {VENUE_TAG: self.venue, DATASET_TAG: self.dataset}
        if self.snapshot:
            tags[SNAPSHOT_TAG] = "true"
        return dg.asset(
            key=self.key,
            group_name=self.group,
            kinds={"python", "parquet"},
            partitions_def=self.partitions() if self.partitions else raw_daily_partitions_def(),
            # A snapshot's too (only today's partition can be taken, and a run over other
            # days says so): its refresh job runs it beside pulls, and a job of assets with
            # different policies makes Dagster warn in every process that loads it.
            backfill_policy=raw_backfill_policy(),
            description=self.description,
            check_specs=raw.quality_check_specs(self.key, self.quality) if self.quality else None,
            metadata=metadata,
            tags=tags,
            owners=list(self.owners),
            freshness_policy=self.freshness_policy,
            required_resource_keys={self.resource},
            deps=list(self.deps),
        )(self._body())

    def _body(self) -> Callable[..., dg.MaterializeResult]:
        compute, resource = self.compute, self.resource
        if self.config is None:

            def body(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
                return compute(context, getattr(context.resources, resource))

            return body

        def configured(context, config):
            return compute(context, getattr(context.resources, resource), config)

        # Dagster reads the run configuration's class from the annotation.
        configured.__annotations__ = {
            "context": dg.AssetExecutionContext,
            "config": self.config,
            "return": dg.MaterializeResult,
        }
        return configured

    def definitions(self) -> dg.Definitions:
        """The asset and the schedules of its own."""
        asset = self.asset()
        return dg.Definitions(
            assets=[asset], schedules=list(self.schedules(asset)) if self.schedules else []
        )


def pull_schedule_status() -> dg.DefaultScheduleStatus:
    """The default status of a schedule that pulls recent partitions from an exchange:
    stopped in replay mode (:func:`settings.replay_mode`; the recordings hold no "today", so
    each tick would pull empty partitions), running otherwise. Either can be flipped in the UI.
    """
    if settings.replay_mode():
        return dg.DefaultScheduleStatus.STOPPED
    return dg.DefaultScheduleStatus.RUNNING


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition_key: str
) -> Any:
    """The latest materialization record of one partition, or ``None``."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition_key]), limit=1
    ).records
    return records[0] if records else None


def latest_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition_key: str
) -> dict[str, Any]:
    """Metadata of the latest materialization of one partition (empty if there is none)."""
    record = latest_materialization(instance, key, partition_key)
    if record is None or record.asset_materialization is None:
        return {}
    return dict(record.asset_materialization.metadata)


def latest_metadata_of_partitions(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition_keys: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """:func:`latest_metadata` of each of ``partition_keys`` (``{}`` for one never
    materialized). One query finds the partitions ever materialized; only those are read
    (a first backfill of 182 days reads none, where a query per day cost 3 ms each)."""
    materialized = instance.get_materialized_partitions(key)
    return {
        pk: latest_metadata(instance, key, pk) if pk in materialized else {}
        for pk in partition_keys
    }


#: Every hour at :02: the sources whose data comes by the hour (candles, funding, trades).
HOURLY_REFRESH = Refresh("hourly_sources_refresh_schedule", "2 * * * *", "Every hour at :02")
