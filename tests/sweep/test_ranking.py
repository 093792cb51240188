import pytest

from backtest.errors import ConfigError
from backtest.sweep.ranking import numeric_metric_names, rank_table, resolve_metric

NAMES = ["Return [%]", "Return (Ann.) [%]", "Sharpe Ratio", "Sortino Ratio", "Max. Drawdown [%]"]


def test_metric_found_by_exact_name_case_or_unique_part():
    assert resolve_metric("Sharpe Ratio", NAMES) == "Sharpe Ratio"
    assert resolve_metric("sharpe", NAMES) == "Sharpe Ratio"
    assert resolve_metric("drawdown", NAMES) == "Max. Drawdown [%]"
    assert resolve_metric("return [%]", NAMES) == "Return [%]"
    assert resolve_metric("Return", NAMES) == "Return [%]", "the name without its unit"


def test_ambiguous_or_unknown_metric_lists_the_choices():
    with pytest.raises(ConfigError, match=r"matches several metrics: 'Sharpe Ratio', 'Sortino"):
        resolve_metric("ratio", NAMES)
    with pytest.raises(ConfigError, match=r"not a metric of these runs.*'Sharpe Ratio'"):
        resolve_metric("Calmar", NAMES)


def test_numeric_metric_names_leave_out_text_and_booleans():
    metrics = {"Return [%]": 1.0, "Trades": 3, "Start": "2025", "Flag": True}
    assert numeric_metric_names(metrics) == ["Return [%]", "Trades"]


def rows():
    return [
        {"fast": 1, "status": "complete", "Sharpe": 0.5, "key": "a"},
        {"fast": 2, "status": "failed", "error": "boom", "key": "b"},
        {"fast": 3, "status": "complete", "Sharpe": 2.0, "key": "c"},
        {"fast": 4, "status": "complete", "Sharpe": float("nan"), "key": "d"},
        {"fast": 5, "status": "complete", "Sharpe": 2.0, "key": "e"},
    ]


def test_rank_table_best_first_then_unranked_then_failed():
    table = rank_table(rows(), "Sharpe", axis_names=["fast"])
    assert table["key"].tolist() == ["c", "e", "a", "d", "b"]
    assert table["rank"].tolist()[:3] == [1, 2, 3]
    assert table["rank"].isna().tolist() == [False, False, False, True, True]
    assert list(table.columns[:3]) == ["rank", "fast", "status"]
    assert list(table.columns[-2:]) == ["error", "key"]


def test_rank_table_ascending():
    table = rank_table(rows(), "Sharpe", ascending=True, axis_names=["fast"])
    assert table["key"].tolist() == ["a", "c", "e", "d", "b"]
