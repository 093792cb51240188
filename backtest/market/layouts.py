"""Names of the import layouts and long/short measures (light: no pandas, for ``--help``)."""

from __future__ import annotations

#: Layout name -> one-line description, in the order auto-detection tries them.
LAYOUT_HELP: dict[str, str] = {
    "coinglass": "CoinGlass API history: time_ms,long_usd,short_usd | OI OHLC (USD) | "
    "*_long_percent ratios (CSV, or the API's Parquet)",
    "coinglass-exchanges": "per-exchange OI: timestamp,price,BINANCE,BYBIT,... (--venue picks)",
    "coinglass-symbols": "symbol,ts_utc,liq_long_usd,liq_short_usd[,oi_total_close]",
    "coinalyze": "date_utc,long_liq_base,short_liq_base,oi_base,ls_ratio (base coin: valued "
    "at stored candle closes)",
    "coinalyze-wide": "t,BTCUSDT_PERP.A_longliq,BTCUSDT_PERP.A_shortliq,..._oi,..._ls_ratio "
    "(many symbols; base coin; --venue picks the exchange code, A = Binance)",
    "coinalyze-ohlcv": "t_label,long_liq_base,short_liq_base,...,close,oi_close (base coin x "
    "close; labels at UTC+6 by default)",
    "binance-metrics": "Binance's metrics archive: create_time,symbol,sum_open_interest,"
    "sum_open_interest_value,count_long_short_ratio,... (samples at create_time)",
    "plain": "time,long,short | time,open_interest[,open_interest_base] | "
    "time,long_share (or long_short_ratio)",
}

#: Layout names, in the order auto-detection tries them.
LAYOUTS: tuple[str, ...] = tuple(LAYOUT_HELP)

#: Long/short measures of a plain file -> the stored column each one fills.
MEASURES: dict[str, str] = {
    "global_account": "long_share",
    "top_account": "top_account_long_share",
    "top_position": "top_position_long_share",
}
