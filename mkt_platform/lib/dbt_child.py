"""``mkt-dbt``: the ``dbt`` beside this Python, killed when the process that started it dies.

Dagster starts dbt as a child process. When that process is killed (``kill -9``, the kernel's
OOM killer), an orphaned dbt would go on writing the warehouse, and holding its lock, for
seconds after its run was declared dead. This wrapper asks Linux to send dbt SIGKILL when its
parent dies (``prctl(PR_SET_PDEATHSIG)``, kept across ``exec``), then becomes dbt. Elsewhere
it only becomes dbt.

A parent that died before the request took effect sends nothing: the wrapper then exits with
137 (as if killed) instead of running dbt for nobody. It knows its parent from
``MKT_DBT_PARENT_PID``, which the process starting it sets (:meth:`mkt_platform.lib.dbt.
MktDbtCliResource.cli`): its own ``os.getppid()`` would already name the process that adopted
it if the parent died while this Python was starting.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


#: The environment variable naming the pid of the process that starts ``mkt-dbt``.
PARENT_PID_ENV = "MKT_DBT_PARENT_PID"


def main() -> None:
    parent = int(os.environ.get(PARENT_PID_ENV) or os.getppid())
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            print("mkt-dbt: prctl(PR_SET_PDEATHSIG) failed", file=sys.stderr)
        if os.getppid() != parent:  # the parent died before the request took effect
            sys.exit(137)
    dbt = Path(sys.executable).parent / "dbt"
    os.execv(dbt, [str(dbt), *sys.argv[1:]])


if __name__ == "__main__":
    main()
