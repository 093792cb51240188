"""Where the bundled data lives: the checkout's ``data/``, or the installed copy.

An editable install (``pip install -e .``) reads the sample and the leverage-tier snapshots from
the checkout; a regular install (``pip install .``) gets the same files through ``setup.py``'s
``data_files`` under ``<prefix>/share/backtest-liquidation/data``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Where ``setup.py`` installs the bundled data, relative to the environment's prefix.
INSTALLED_DATA = Path("share") / "backtest-liquidation" / "data"


def bundled_data_dir() -> Path:
    """Return the folder holding ``sample/`` and ``tiers/``."""
    checkout = Path(__file__).resolve().parents[1] / "data"
    if (checkout / "tiers").is_dir():
        return checkout
    return Path(sys.prefix) / INSTALLED_DATA
