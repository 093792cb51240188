"""Dask preload of the local worker processes a sweep starts: Ctrl-C is the sweep's to handle.

Ctrl-C in a terminal reaches every process of its group.  The sweep process stops its local
workers itself when interrupted, so each worker ignores SIGINT from the moment it is up
instead of printing its own KeyboardInterrupt traceback.  Passed to
:class:`distributed.LocalCluster` as ``preload`` by :func:`backtest.sweep.execute.open_client`.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    """Ignore SIGINT in this worker process (only its main thread may change handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
