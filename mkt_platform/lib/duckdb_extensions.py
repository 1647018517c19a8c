"""DuckDB extensions without the network: installed from the Python packages that carry them.

DuckDB installs an extension by downloading it from ``extensions.duckdb.org`` the first time
it is needed, which fails where only the package registries answer (this project's machines,
an air-gapped deployment) and is a supply-chain step nobody pinned elsewhere. The extensions
the platform uses come instead as PyPI packages (``duckdb-extension-<name>``, built for one
DuckDB version: 1.5.5, which ``pyproject.toml`` pins), locked in ``uv.lock`` like any other
dependency. :func:`load_offline` installs each from its package's file into the
connection's extension directory (``duckdb_extensions.import_extension``, an ``INSTALL`` from
a local path) and loads it, after turning DuckDB's automatic installs off, so that a missing
or mismatched package is an error naming it, never a download.

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


def load_offline(con: duckdb.DuckDBPyConnection, names: Iterable[str] = OFFLINE_EXTENSIONS) -> None:
    """Install (from the packages, never the network) and load ``names`` into ``con``.

    Turns off ``autoinstall_known_extensions`` on the connection first, so that nothing it
    runs later downloads an extension either. Idempotent: loading an extension twice is a
    no-op.

    Raises:
        ExtensionUnavailableError: an extension outside :data:`OFFLINE_EXTENSIONS`, its
            package not installed, or the package holding no build for this DuckDB version.
    """
    from duckdb_extensions import import_extension

    con.execute("SET autoinstall_known_extensions = false")
    version = con.sql("PRAGMA version").fetchone()[0]
    for name in names:
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
        import_extension(name, con=con)
        con.execute(f"LOAD {name}")
