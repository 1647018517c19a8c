"""``mkt-dbt``: the ``dbt`` beside this Python, killed when the process that started it dies.

Dagster starts dbt as a child process. When that process is killed (``kill -9``, the kernel's
OOM killer), an orphaned dbt would go on writing the warehouse, and holding its lock, for
seconds after its run was declared dead. This wrapper asks Linux to send dbt SIGKILL when its
parent dies (``prctl(PR_SET_PDEATHSIG)``, kept across ``exec``), then becomes dbt. Elsewhere
it only becomes dbt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def main() -> None:
    parent = os.getppid()
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
