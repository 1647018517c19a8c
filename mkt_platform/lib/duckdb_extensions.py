"""DuckDB extensions without the network: loaded from the Python packages that carry them.

DuckDB installs an extension by downloading it from ``extensions.duckdb.org`` the first time
it is needed, which fails where only the package registries answer (this project's machines,
an air-gapped deployment) and is a supply-chain step nobody pinned elsewhere. The extensions
the platform uses come instead as PyPI packages (``duckdb-extension-<name>``, built for one
DuckDB version: 1.5.5, which ``pyproject.toml`` pins), locked in ``uv.lock`` like any other
dependency. :func:`load_offline` loads each straight from its package's file (``LOAD
'<path>'``), after turning DuckDB's automatic installs off, so that a missing or mismatched
package is an error naming it, never a download; nothing is copied into DuckDB's extension
folder (``~/.duckdb/extensions``).

Signatures: DuckDB checks an extension's signature at every load, by hashing the whole file
(35 MB for ``ducklake``, as much for each catalog extension): about 0.1 s per extension, on
every connection, twice per dbt command and warehouse reader. The files loaded here are the
packages' own, which ``uv`` checked against the hashes in ``uv.lock`` when it installed them,
in the same folder tree as DuckDB's own library, which nobody checks at load: the check adds
no trust they lack. So the connections the platform opens (:func:`connect`, and dbt's
through ``mkt_platform/lib/dbt_duckdb_offline.py``) are created with
:func:`connection_config`: unsigned loads allowed, and no extension installed or loaded
automatically, so that nothing but the files named here is ever loaded unchecked.
``MKT_DUCKDB_VERIFY_EXTENSIONS=1`` (:func:`mkt_platform.settings.verify_duckdb_extensions`)
keeps DuckDB's check.

Extensions: ``ducklake`` (the DuckLake lakehouse format), ``postgres_scanner`` (a DuckLake
catalog in PostgreSQL), ``sqlite_scanner`` (a catalog in a SQLite file) and ``httpfs`` (S3
and HTTP reads).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import duckdb

#: The extensions the platform may load, as DuckDB names them; each has its package
#: ``duckdb-extension-<name>`` (``_`` as ``-``) in the dependencies.
OFFLINE_EXTENSIONS = ("ducklake", "postgres_scanner", "sqlite_scanner", "httpfs")


class ExtensionUnavailableError(RuntimeError):
    """An extension cannot be loaded without a download: its package is missing, or was built
    for another DuckDB version; the message names the package and both versions."""


def connection_config() -> dict[str, bool]:
    """The DuckDB settings of every connection the platform opens (given to
    ``duckdb.connect(config=...)``: they cannot change once the database is open): no
    extension installed nor loaded automatically, and unsigned extensions allowed unless
    ``MKT_DUCKDB_VERIFY_EXTENSIONS=1`` (the module docstring says why).

    Raises:
        mkt_platform.settings.SettingError: ``MKT_DUCKDB_VERIFY_EXTENSIONS`` is malformed.
    """
    from mkt_platform import settings

    return {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_unsigned_extensions": not settings.verify_duckdb_extensions(),
    }


def connect(database: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with :func:`connection_config`.

    Raises:
        duckdb.Error: DuckDB cannot open ``database``.
        mkt_platform.settings.SettingError: ``MKT_DUCKDB_VERIFY_EXTENSIONS`` is malformed.
    """
    return duckdb.connect(database, read_only=read_only, config=connection_config())


def extension_file(name: str, version: str) -> Path:
    """The file of extension ``name`` for DuckDB ``version`` in its package
    (``duckdb_extension_<name>/extensions/<version>/<name>.duckdb_extension``).

    Raises:
        ExtensionUnavailableError: an extension outside :data:`OFFLINE_EXTENSIONS`, its
            package not installed, or the package holding no build for ``version``.
    """
    package = f"duckdb_extension_{name}"
    if name not in OFFLINE_EXTENSIONS:
        raise ExtensionUnavailableError(
            f"DuckDB extension {name!r} is not one the platform ships "
            f"(it ships {', '.join(OFFLINE_EXTENSIONS)})"
        )
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionUnavailableError(
            f"DuckDB extension {name!r}: package {package.replace('_', '-')} is not "
            "installed (make install installs it from uv.lock)"
        )
    (folder,) = spec.submodule_search_locations
    built = sorted(p.name for p in Path(folder, "extensions").iterdir())
    if version not in built:
        raise ExtensionUnavailableError(
            f"DuckDB extension {name!r}: package {package.replace('_', '-')} holds builds "
            f"for {', '.join(built) or 'no version'}, but duckdb is {version}"
        )
    return Path(folder, "extensions", version, f"{name}.duckdb_extension")


def load_offline(con: duckdb.DuckDBPyConnection, names: Iterable[str] = OFFLINE_EXTENSIONS) -> None:
    """Load ``names`` into ``con`` from their packages' files (never the network, never
    DuckDB's extension folder).

    Turns off ``autoinstall_known_extensions`` on the connection first, so that nothing it
    runs later downloads an extension either. Idempotent: loading an extension twice is a
    no-op. On a connection not made by :func:`connect`, DuckDB checks each file's signature.

    Raises:
        ExtensionUnavailableError: an extension outside :data:`OFFLINE_EXTENSIONS`, its
            package not installed, or the package holding no build for this DuckDB version.
        duckdb.Error: DuckDB refuses the file (a signature that does not match, when checked).
    """
    con.execute("SET autoinstall_known_extensions = false")
    version = con.sql("PRAGMA version").fetchone()[0]
    files = [extension_file(name, version) for name in names]  # every name checked first
    for path in files:
        quoted = str(path).replace("'", "''")
        con.execute(f"LOAD '{quoted}'")
