"""Zero-copy NumPy views of backtrader line buffers.

In ``runonce`` mode backtrader keeps every line as a flat ``array('d')`` (``line.array``) and,
before it calls an indicator's ``once``, grows the indicator's own lines to the length of its
clock (``LineIterator._once`` calls ``forward(size=clock.buflen())``).  A NumPy view of such an
array reads and writes the line in place: inputs are never copied and results land directly in
the indicator's lines.

A view pins the array's memory: while one is alive, ``array.append`` raises ``BufferError``.
Views made here must therefore live only inside one ``once`` call.
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np

from backtest.errors import ConfigError


def line_view(line: Any, end: int, *, writeable: bool = False) -> np.ndarray:
    """Return ``line.array[:end]`` as a float64 NumPy view (no copy).

    Parameters
    ----------
    line : backtrader.LineBuffer
        A line in unbounded mode (the mode used with ``preload`` and ``runonce``).
    end : int
        Number of leading values to expose.
    writeable : bool
        False (default) marks the view read-only so that an input is never written by mistake.

    Returns
    -------
    numpy.ndarray
        A view of the first ``end`` values sharing memory with the line.

    Raises
    ------
    ConfigError
        When the line keeps a bounded ``deque`` (``exactbars`` memory saving), which has no
        contiguous buffer.
    """
    buffer = line.array
    if not isinstance(buffer, array.array):
        raise ConfigError(
            "vectorised indicators need full line buffers: run cerebro with exactbars=False "
            "(the default) when using runonce"
        )
    if end <= 0 or len(buffer) == 0:
        return np.empty(0, dtype=np.float64)
    view = np.frombuffer(buffer, dtype=np.float64, count=min(end, len(buffer)))
    if not writeable:
        view.flags.writeable = False
    return view


def feed_line(data: Any, name: str) -> Any | None:
    """Return the line called ``name`` of a data feed, or None when the feed has no such line."""
    aliases = data.lines.getlinealiases()
    if name not in aliases:
        return None
    return getattr(data.lines, name)


def require_lines(data: Any, names: tuple[str, ...], owner: str) -> None:
    """Raise :class:`ConfigError` unless ``data`` has every line in ``names``.

    Parameters
    ----------
    data : backtrader.LineSeries
        The indicator's input.
    names : tuple of str
        Lines the indicator reads.
    owner : str
        Indicator name, for the message.
    """
    aliases = getattr(getattr(data, "lines", None), "getlinealiases", lambda: ())()
    missing = [name for name in names if name not in aliases]
    if missing:
        raise ConfigError(
            f"{owner} needs a candle feed with lines {', '.join(names)} (missing "
            f"{', '.join(missing)}): pass the data feed itself (self.data), not a single line"
        )
