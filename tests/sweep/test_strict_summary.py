"""``sweep --json`` prints strict JSON (null for missing metrics), like every other output.

On the code before :mod:`backtest.strict_json`, the summary's best row printed ``NaN`` for the
metrics a run could not compute (a run with no losing trade has no Sortino, ...).
"""

from __future__ import annotations

import contextlib
import json

from backtest.cli import main
from backtest.sweep import execute
from tests.sweep import fakes
from tests.sweep.conftest import SINCE, UNTIL


def strict(text: str):
    def refuse(constant):
        raise AssertionError(f"not strict JSON: bare {constant}")

    return json.loads(text, parse_constant=refuse)


def test_sweep_json_is_strict(capsys, monkeypatch, thread_client, store_dir, tmp_path):
    @contextlib.contextmanager
    def in_process(workers=None, scheduler=None, **options):
        yield thread_client

    monkeypatch.setattr(execute, "open_client", in_process)
    argv = ["sweep", "--strategy", fakes.STRATEGY, "-g", "fast=3,4", "-g", "slow=800"]
    argv += ["--since", SINCE, "--until", UNTIL, "--data-dir", store_dir]
    argv += ["--out", str(tmp_path / "out"), "--json", "--rank-by", "Return [%]"]
    assert main(argv) == 0
    summary = strict(capsys.readouterr().out)
    assert summary["runs"] == 2 and summary["best"] is not None
    missing = [name for name, value in summary["best"].items() if value is None]
    assert "Sharpe" in missing, "a run without trades has no Sharpe: null, not NaN"
    for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines():
        strict(line)
    strict((tmp_path / "out" / "sweep.json").read_text())
