"""A picture of a validation a trader can read (matplotlib, PNG).

Truth against the estimate, over time and as a scatter, for long and short liquidations.

Over time (log scale): the recorded liquidations per truth bar and the map's estimate divided
by its scale (so both lines share the axis; the scale is in the legend) and the naive proxy
likewise.  Scatter (log-log): each bar's estimate against the truth, with its Spearman rank
correlation; a good map is a tight rising cloud.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from backtest.validation.scoring import ValidationResult

_COLORS = {"truth": "#222222", "map": "#d62728", "naive": "#1f77b4"}


def _scaled(values: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float]:
    total = float(truth.sum())
    estimate = float(values.sum())
    factor = estimate / total if total > 0 and estimate > 0 else 1.0
    return values / factor, factor


def render_validation_png(result: ValidationResult, path: str | Path, *, dpi: int = 110) -> Path:
    """Draw the 2×2 picture (long/short × time/scatter) into ``path`` and return it."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    series = result.series
    card = result.scorecard
    figure, axes = plt.subplots(
        2, 2, figsize=(15, 8.5), gridspec_kw={"width_ratios": [3.2, 1]}, constrained_layout=True
    )
    times = series.index
    for row, side in enumerate(("long", "short")):
        truth = series[f"truth_{side}"].to_numpy()
        estimate = series[f"map_{side}"].to_numpy()
        timeline = axes[row][0]
        floor = max(float(np.nanmin(truth[truth > 0])) / 3 if (truth > 0).any() else 1.0, 1.0)
        timeline.plot(times, np.maximum(truth, floor), color=_COLORS["truth"], lw=1.0,
                      label=f"recorded {side} liquidations")  # fmt: skip
        scaled, factor = _scaled(estimate, truth)
        timeline.plot(times, np.maximum(scaled, floor), color=_COLORS["map"], lw=1.0, alpha=0.85,
                      label=f"map estimate ÷ {factor:.3g} (its scale)")  # fmt: skip
        if f"naive_{side}" in series:
            naive, naive_factor = _scaled(series[f"naive_{side}"].to_numpy(), truth)
            timeline.plot(times, np.maximum(naive, floor), color=_COLORS["naive"], lw=0.8,
                          alpha=0.5, label=f"naive proxy ÷ {naive_factor:.3g}")  # fmt: skip
        timeline.set_yscale("log")
        timeline.set_ylabel(f"{side} liquidated per bar (USD, log)")
        timeline.grid(True, which="major", alpha=0.3)
        timeline.legend(loc="upper left", fontsize=9)
        rho = card.value("spearman", side)
        timeline.set_title(
            f"{side.capitalize()} liquidations per {_step(result)}: Spearman map {rho:.3f}, "
            f"naive {card.value('spearman', side, 'naive'):.3f}",
            fontsize=11,
        )
        scatter = axes[row][1]
        keep = (truth > 0) & (estimate > 0)
        scatter.scatter(truth[keep], estimate[keep], s=6, alpha=0.45, color=_COLORS["map"])
        scatter.set_xscale("log")
        scatter.set_yscale("log")
        scatter.set_xlabel(f"recorded {side} (USD)")
        scatter.set_ylabel(f"map {side} estimate (USD)")
        scatter.set_title(f"each bar, rank corr. {rho:.3f}", fontsize=10)
        scatter.grid(True, which="major", alpha=0.3)
    window = result.window
    what = " ".join(str(result.meta[key]) for key in ("symbol", "timeframe") if key in result.meta)
    honesty = {
        "none": "parameters fitted elsewhere (out-of-sample)",
        "partly": "parameters fitted on part of this window",
        "all": "parameters fitted on this window (in-sample)",
        "unknown": "parameters not from a calibration",
    }[result.fitted_overlap]
    share = card.value("long_share_correlation", "share")
    figure.suptitle(
        f"Liquidation map vs recorded liquidations — {what}, {window.bars} bars "
        f"{window.first_bar:%Y-%m-%d} .. {window.last_bar:%Y-%m-%d} UTC; long-share corr. "
        f"(busiest quarter) {share:.3f}; {honesty}",
        fontsize=12,
    )
    target = Path(path)
    figure.savefig(target, dpi=dpi)
    plt.close(figure)
    return target


def _step(result: ValidationResult) -> str:
    series = result.series
    if len(series.index) < 2:
        return "bar"
    hours = (series.index[1] - series.index[0]).total_seconds() / 3600.0
    return f"{hours:g} h bar" if math.isfinite(hours) else "bar"


__all__ = ["render_validation_png"]
