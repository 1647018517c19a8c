"""Benchmark: the code location's load against a bare ``import dagster, dagster_dbt``.

Issue 13's target: the definitions (``mkt_platform.definitions`` imported and built, what a
code server or ``dg dev`` does when it loads the code location) in at most 1.5x the time of
the bare import. Each sample is a fresh interpreter; the two kinds alternate, so that a host
whose speed drifts moves both alike. For each kind it prints the median and the fastest of
``--repeat`` samples:

- in process: the wall and CPU seconds from the first import to the end (for the code
  location, the import and :func:`mkt_platform.definitions.build_definitions`);
- the whole process: as ``python -c`` runs it, the interpreter's start and exit included.

The definitions are built on an empty data directory (nothing in it is read at load). Not a
test: it prints figures, it asserts nothing.

    python benchmarks/definitions_import.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

#: Each kind's code: what it imports (and builds), timed in its own process.
KINDS = {
    "import dagster, dagster_dbt": "import dagster, dagster_dbt",
    "definitions (import and build)": (
        "from mkt_platform.definitions import build_definitions\nbuild_definitions()"
    ),
}

PROBE = """
import json, time
wall, cpu = time.perf_counter(), time.process_time()
{code}
print(json.dumps([time.perf_counter() - wall, time.process_time() - cpu]))
"""


def cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def sample(code: str, env: dict[str, str]) -> tuple[float, float, float, float]:
    """One fresh interpreter running ``code``: its in-process wall and CPU seconds, then the
    whole process's."""
    before, started = cpu_of_children(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = time.perf_counter() - started, cpu_of_children() - before
    inside = json.loads(done.stdout.strip().splitlines()[-1])
    return inside[0], inside[1], wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="samples of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "MKT_DATA_DIR": data_dir, "PYTHONWARNINGS": "ignore"}
        for code in KINDS.values():  # one unmeasured run each: the files in the page cache
            sample(code, env)
        samples: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in KINDS}
        for _ in range(args.repeat):
            for kind, code in KINDS.items():
                samples[kind].append(sample(code, env))
    columns = ("in-process wall", "in-process CPU", "process wall", "process CPU")
    print(f"{args.repeat} fresh interpreters of each, alternated: median (fastest), seconds")
    print(f"{'':<32}" + "".join(f"{c:>18}" for c in columns))
    figures: dict[str, list[tuple[float, float]]] = {}
    for kind, rows in samples.items():
        figures[kind] = [
            (statistics.median(r[i] for r in rows), min(r[i] for r in rows)) for i in range(4)
        ]
        cells = "".join(f"{f'{m:.2f} ({low:.2f})':>18}" for m, low in figures[kind])
        print(f"{kind:<32}{cells}")
    bare, built = figures.values()
    ratios = "".join(
        f"{f'{b[0] / a[0]:.2f}x ({b[1] / a[1]:.2f}x)':>18}"
        for a, b in zip(bare, built, strict=True)
    )
    print(f"{'ratio (target: at most 1.5x)':<32}{ratios}")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
