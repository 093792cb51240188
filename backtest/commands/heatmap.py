"""``backtest heatmap``: draw the liquidation map around one time as a PNG and an HTML page."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError, DataError

DEFAULT_OUT = Path("reports") / "heatmap"
#: Most density columns drawn; longer windows take a snapshot every few bars.
MAX_COLUMNS = 1500
#: Default search band of the printed clusters, in percent.
DEFAULT_BAND_PCT = 10.0


def register(subparsers: Any) -> None:
    """Add the ``heatmap`` subcommand."""
    parser = subparsers.add_parser(
        "heatmap",
        help="draw the liquidation map (PNG + offline HTML) and print the strongest clusters",
        description=(
            "Run the liquidation map over stored candles and draw it: candles over time with "
            "the estimated density of liquidation levels behind them, and the long/short "
            "profile at --at with round levels marked.  Writes a PNG and a self-contained HTML "
            "page, prints where the strongest clusters are and how a standard shock would "
            "cascade.  Defaults: the bundled BTC/USDT:USDT 5m sample (binanceusdm)."
        ),
        epilog=(
            "examples:\n"
            "  backtest heatmap --at 2025-10-10T20:00\n"
            "  backtest heatmap --symbol ETH/USDT:USDT --at 2025-10-10T20:00 --window 12h\n"
            "  backtest heatmap --at 2025-10-10T20:00 --map band=0.08 --out pictures"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--symbol", default="BTC/USDT:USDT", help="ccxt unified symbol")
    parser.add_argument("--exchange", default="binanceusdm", help="ccxt exchange id of the data")
    parser.add_argument("--timeframe", default="5m", help="candle timeframe (default 5m)")
    parser.add_argument(
        "--at",
        help="time of the profile, UTC (2025-10-10T20:00); default: the last stored bar",
    )
    parser.add_argument(
        "--window", default="2d", help="time shown before --at, e.g. 12h, 2d, 1w (default 2d)"
    )
    parser.add_argument(
        "--after",
        default="6h",
        help="time shown after --at when the data has it, e.g. 0m, 6h (default 6h)",
    )
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), metavar="DIR", help=f"folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--data-dir", help="data store folder (default ./data, then the sample)")
    parser.add_argument(
        "--warmup",
        metavar="SPAN",
        help=(
            "history before the window the map runs over: auto (default: 20 half-lives of "
            "the map's decay), 0 (none) or a span such as 30d"
        ),
    )
    parser.add_argument(
        "--map-profile",
        metavar="FILE",
        help="liquidation-map profile (TOML [map] table, e.g. from `backtest calibrate`); "
        "--map values override it",
    )
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="liquidation-map parameter (repeatable), e.g. band=0.08 or half_life_hours=24",
    )
    parser.add_argument(
        "--band",
        type=float,
        default=DEFAULT_BAND_PCT,
        metavar="PCT",
        help=(
            f"search band for the printed clusters, percent either side of the price "
            f"(default {DEFAULT_BAND_PCT:g}: twice the map's trading band, so the walls a "
            "crash would reach are listed)"
        ),
    )
    parser.add_argument(
        "--rows", type=int, default=220, help="about how many price bins to draw (default 220)"
    )
    parser.set_defaults(handler=run_heatmap)


@dataclass(frozen=True)
class HeatmapOutput:
    """What the command produced (returned by :func:`make_heatmap` for callers and tests)."""

    png: Path
    html: Path
    picture: Any  # backtest.liquidation.picture.MapPicture


def _venue_params(
    params: Any,
    overrides: dict[str, Any],
    frame: Any,
    symbol: str,
    exchange: str,
    timeframe: str,
    data_dir: Any,
) -> Any:
    """The map parameters with the exchange's venue defaults under the user's ``--map``.

    As in runs (:func:`backtest.engine.venues.map_defaults`): the venue's formula and bracket
    rate, leverages folded at the symbol's maximum, the funding tilt scaled to the series'
    interval.  Exchanges a run does not support keep the plain parameters.
    """
    from backtest.engine.venues import (
        EXCHANGE_VENUES,
        funding_interval_hours,
        load_venue_tiers,
        map_defaults,
    )
    from backtest.liquidation.heatmap import MapParams

    venue = EXCHANGE_VENUES.get(exchange)
    if venue is None:
        return params
    tiers = load_venue_tiers(
        symbol, exchange, frame.index[0].to_pydatetime(), data_dir=data_dir, timeframe=timeframe
    )
    defaults = map_defaults(
        venue, tiers, overrides, funding_hours=funding_interval_hours(frame, venue)
    )
    return MapParams.from_dict({**defaults, **overrides}) if defaults else params


def _span(text: str, option: str) -> Any:
    """Parse a span such as ``2d`` or ``90m`` into a Timedelta (0 allowed)."""
    import pandas as pd

    from backtest.market.timeframes import timeframe_to_ms

    value = str(text).strip()
    if value in ("0", "0m", "0h", "0d"):
        return pd.Timedelta(0)
    try:
        return pd.Timedelta(milliseconds=timeframe_to_ms(value))
    except ConfigError:
        raise ConfigError(
            f"{option} {text!r} is not a time span; use a count and a unit: 90m, 12h, 2d or 1w"
        ) from None


def _parse_value(text: str) -> Any:
    """A --map value: JSON (numbers, true/false, null, lists), a comma list of numbers, or text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if "," in text:
        try:
            return tuple(float(part) for part in text.split(","))
        except ValueError:
            pass
    return text


def map_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``NAME=VALUE`` strings into a dict of map parameters."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name.strip():
            raise ConfigError(f"--map {pair!r} is not NAME=VALUE; e.g. --map band=0.08")
        overrides[name.strip()] = _parse_value(value.strip())
    if "cascade" in overrides:  # true/false: the printed cascades always use one
        from backtest.runs import cascade_setting

        overrides["cascade"] = cascade_setting(overrides["cascade"]) or {}
    return overrides


def _safe_name(symbol: str) -> str:
    return "".join(character if character.isalnum() else "_" for character in symbol).strip("_")


def make_heatmap(
    *,
    symbol: str = "BTC/USDT:USDT",
    exchange: str = "binanceusdm",
    timeframe: str = "5m",
    at: Any = None,
    window: str = "2d",
    after: str = "6h",
    out: str | Path = DEFAULT_OUT,
    data_dir: str | Path | None = None,
    map_params: dict[str, Any] | None = None,
    band_pct: float = DEFAULT_BAND_PCT,
    rows: int = 220,
    warmup: str | None = None,
) -> HeatmapOutput:
    """Load the data, run the map, simulate the standard cascades and write both pictures.

    Parameters are those of the command line (see ``backtest heatmap --help``).  The map
    starts ``warmup`` before the window (by default the rule of
    :func:`backtest.liquidation.warmup.warmup_duration`); when the data starts later, one
    warning line on the ``backtest.warmup`` logger says so.

    Returns
    -------
    HeatmapOutput
        Paths of the PNG and HTML written and the :class:`MapPicture` drawn.

    Raises
    ------
    ConfigError
        For a bad time, span or map parameter.
    DataError
        When the symbol is not stored or ``at`` lies outside the data.
    """
    import numpy as np
    import pandas as pd

    from backtest.folders import check_writable_target
    from backtest.liquidation.cascade import CascadeParams, market_state, simulate_cascade
    from backtest.liquidation.heatmap import LiquidationMap, MapParams
    from backtest.liquidation.picture import build_picture, render_html, render_png
    from backtest.market.store import load_market
    from backtest.market.timeframes import format_ms, parse_time, timeframe_to_ms

    check_writable_target(out, HEATMAP_KINDS, "--out")  # before any work; again before writing
    if not 20 <= int(rows) <= 2000:
        raise ConfigError(f"--rows must be between 20 and 2000, got {rows}")
    if not (math.isfinite(band_pct) and 0 < band_pct <= 50):
        raise ConfigError(f"--band must be a percentage in (0, 50], got {band_pct:g}")
    bar = pd.Timedelta(milliseconds=timeframe_to_ms(timeframe))
    before = _span(window, "--window")
    after_span = _span(after, "--after")
    if before < 4 * bar:
        raise ConfigError(f"--window {window!r} is shorter than four {timeframe} bars; widen it")
    overrides = dict(map_params or {})
    overrides.setdefault("cascade", {})
    try:
        params = MapParams.from_dict(overrides)
    except OverflowError:
        raise ConfigError(
            "a --map value is too large to be a number the map can use; give a finite value"
        ) from None
    cascade_params = params.cascade if params.cascade is not None else CascadeParams()

    frame = load_market(symbol, timeframe, exchange=exchange, data_dir=data_dir)
    params = _venue_params(params, overrides, frame, symbol, exchange, timeframe, data_dir)
    first_close = frame.index[0] + bar
    last_close = frame.index[-1] + bar
    stored = f"{format_ms(_ms(frame.index[0]))} .. {format_ms(_ms(last_close))} UTC"
    if at is None:
        at_time = last_close
    else:
        at_ms = parse_time(at, "--at")
        at_time = pd.Timestamp(at_ms, unit="ms", tz="UTC")
        earliest = first_close + 3 * bar
        if first_close - bar <= at_time < earliest:
            raise DataError(
                f"--at {format_ms(at_ms)} UTC is at the very start of the stored {symbol} "
                f"{timeframe} data ({stored}); the map needs bars before it: pick "
                f"{format_ms(_ms(earliest))} UTC or later"
            )
        if not earliest <= at_time <= last_close:
            raise DataError(
                f"--at {format_ms(at_ms)} UTC is outside the stored {symbol} {timeframe} data "
                f"({stored}); pick a time inside it or download more with `backtest download "
                f"--exchange {exchange} --symbol {symbol} --timeframe {timeframe}`"
            )

    # run the map from its warm-up before the window to the window's end
    from backtest.engine.warmup import logger as warmup_logger
    from backtest.liquidation.warmup import describe_span, resolve_warmup

    warm_up = resolve_warmup(warmup, params, timeframe)
    start, end = at_time - before, at_time + after_span
    run_frame = frame.loc[(frame.index >= start - warm_up) & (frame.index < end)]
    if len(run_frame) and run_frame.index[0] - (start - warm_up) >= bar:
        used = max(start - run_frame.index[0], pd.Timedelta(0))
        warmup_logger.warning(
            f"warm-up shortened: the liquidation map starts at "
            f"{run_frame.index[0]:%Y-%m-%d %H:%M} UTC, {describe_span(used)} before the "
            f"window (the warm-up asks for {describe_span(warm_up)}; no stored {symbol} "
            f"{timeframe} bars before that); download earlier data for a fully warmed map"
        )
    window_positions = np.flatnonzero(run_frame.index >= start)
    if window_positions.size < 2:
        raise DataError(f"the window before --at holds too few bars ({stored}); widen --window")
    profile_position = int(np.searchsorted(run_frame.index, at_time - bar, side="right")) - 1
    every = max(1, math.ceil(window_positions.size / MAX_COLUMNS))
    first = max(int(window_positions[0]) - 1, 0)
    positions = set(range(first, int(window_positions[-1]) + 1, every))
    positions.add(profile_position)
    result = LiquidationMap(params).run(run_frame, snapshot_at=sorted(positions))
    snapshots = [snapshot for snapshot in result.snapshots if snapshot.time is not None]

    # the standard cascades from the profile, with the EWMA market state of that bar
    volatility, notional = market_state(
        run_frame["close"],
        run_frame["volume"],
        bar_seconds=bar.total_seconds(),
        params=cascade_params,
    )
    profile = result.snapshot(run_frame.index[profile_position])
    cascades = []
    if math.isfinite(volatility[profile_position]):
        shock = cascade_params.standard_shock_pct
        cascades = [
            simulate_cascade(
                profile,
                signed,
                cascade_params,
                daily_volatility=float(volatility[profile_position]),
                daily_notional=float(notional[profile_position]),
            )
            for signed in (-shock, shock)
        ]

    picture = build_picture(
        run_frame.loc[run_frame.index >= start],
        snapshots,
        at_time,
        symbol=symbol,
        exchange=exchange,
        timeframe=timeframe,
        band_pct=float(band_pct),
        cascades=cascades,
        rows=int(rows),
    )
    stem = f"liquidation-map_{_safe_name(symbol)}_{timeframe}_{at_time:%Y%m%dT%H%M}"
    png, html = _write_pictures(picture, out, stem, render_png, render_html)
    return HeatmapOutput(png=png, html=html, picture=picture)


#: Marker kinds of folders ``heatmap --out`` may write into.
HEATMAP_KINDS = ("heatmap", "report")


def _write_pictures(
    picture: Any, out: str | Path, stem: str, render_png: Any, render_html: Any
) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.html`` into ``out`` without touching the user's files.

    ``out`` must be missing, empty or marked by this program as a heatmap (or report) folder
    (:func:`backtest.folders.check_writable_target`); it is marked ``heatmap`` when new.  Both
    pictures are drawn into a temporary folder inside ``out`` (named by the program's temporary
    pattern, so a killed run's leftovers are removed on the next start) and renamed into place.
    """
    import os
    import shutil

    from backtest.folders import (
        MARKER_FILE,
        check_writable_target,
        clean_temporaries,
        temporary_path,
        write_marker,
    )

    folder = check_writable_target(out, HEATMAP_KINDS, "--out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        clean_temporaries(folder)
        if not (folder / MARKER_FILE).exists():
            write_marker(folder, "heatmap")
        staging = temporary_path(folder / stem)
        staging.mkdir()
    except OSError as error:
        raise ConfigError(f"cannot write the --out folder {out}: {error.strerror}") from None
    try:
        written = []
        for name, render in ((f"{stem}.png", render_png), (f"{stem}.html", render_html)):
            render(picture, staging / name)
            written.append(folder / name)
        for path in written:
            os.replace(staging / path.name, path)
    except OSError as error:
        raise ConfigError(f"cannot write into the --out folder {out}: {error.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written[0], written[1]


def _ms(moment: Any) -> int:
    return int(moment.value // 1_000_000)


def summary_lines(output: HeatmapOutput) -> list[str]:
    """The text the command prints: clusters, cascades and the files written."""
    from backtest.liquidation.picture import format_notional

    picture = output.picture
    quote = picture.quote
    lines = [
        f"{picture.symbol} {picture.exchange} {picture.timeframe}: estimated liquidation map at "
        f"{picture.at:%Y-%m-%d %H:%M} UTC, price {picture.price_at:,.2f} {quote}",
        f"strongest clusters within ±{picture.band_pct:g} % (notional within "
        f"{3 * picture.bin_step:,.0f} {quote} around the peak):",
        f"  {'side':<6} {'price':>12} {'notional':>16} {'distance':>10}",
    ]
    if not picture.clusters:
        lines.append("  (none: no liquidation levels inside the band)")
    for cluster in picture.clusters:
        lines.append(
            f"  {cluster.side:<6} {cluster.price:>12,.0f} "
            f"{format_notional(cluster.notional) + ' ' + quote:>16} "
            f"{cluster.distance_pct:>+9.2f}%"
        )
    for result in picture.cascades:
        shock = (result.shock_price / result.start_price - 1) * 100
        lines.append(
            f"cascade: a {shock:+.1f} % shock ends at {result.end_price:,.0f} "
            f"({result.move_pct:+.2f} %, amplification {result.amplification:.2f}, "
            f"{format_notional(result.liquidated_notional)} {quote} liquidated"
            f"{', runaway: ' + result.stop_reason if result.runaway else ''})"
        )
    lines.append(f"wrote {output.png}")
    lines.append(f"wrote {output.html}")
    return lines


def _map_values(args: argparse.Namespace) -> dict[str, Any]:
    """``--map-profile`` values (when given) updated with the ``--map`` flags."""
    from backtest.liquidation.profiles import map_params_with_profile

    return map_params_with_profile(args.map_profile, map_overrides(args.map))


def run_heatmap(args: argparse.Namespace) -> int:
    """Handle ``backtest heatmap``."""
    output = make_heatmap(
        symbol=args.symbol,
        exchange=args.exchange,
        timeframe=args.timeframe,
        at=args.at,
        window=args.window,
        after=args.after,
        out=args.out,
        data_dir=args.data_dir,
        map_params=_map_values(args),
        band_pct=args.band,
        rows=args.rows,
        warmup=args.warmup,
    )
    print("\n".join(summary_lines(output)))
    return 0
