"""``python -m backtest``: the command line."""

from backtest.cli import main

raise SystemExit(main())
