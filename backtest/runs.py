"""One backtest from settings to a written report: the library behind ``backtest run``.

:func:`prepare` turns plain settings (a run file merged with flags) into a validated
:class:`~backtest.engine.RunConfig` and the strategy class; :func:`execute_run` runs it, computes
the metrics and writes the run folder.  The folder is assembled under a temporary name and
swapped into place only when everything is written (:func:`backtest.folders.staged_folder`), so
a failed or interrupted run never leaves a folder that looks complete, and only a folder this
program wrote (marked ``.backtest-run``) or an empty one is ever replaced.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backtest.errors import ConfigError
from backtest.folders import check_writable_target, staged_folder
from backtest.results import Results
from backtest.strategy import Strategy


@dataclass
class RunOutcome:
    """A finished run: its results, metrics and where they were written."""

    results: Results
    metrics: dict[str, Any]
    folder: Path
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def report_path(self) -> Path:
        """The HTML report."""
        return self.folder / "report.html"

    def summary(self) -> dict[str, Any]:
        """Machine-readable summary (what ``--json`` prints).

        A portfolio run adds ``symbols``: each symbol's row of the report's per-symbol table.
        """
        summary = {
            "run_id": self.results.meta.get("run_id"),
            "strategy": self.results.meta.get("strategy"),
            "symbol": self.results.meta.get("symbol"),
            "folder": str(self.folder),
            "report": str(self.report_path),
            "metrics": self.metrics,
            "warnings": list(self.warnings),
            "engine": self.results.meta.get("engine", "event"),
        }
        if getattr(self.results, "portfolio", False):
            from backtest.report.portfolio import symbol_metrics

            table = symbol_metrics(self.results).set_index("symbol")
            summary["symbols"] = {
                str(symbol): {name: _plain_number(value) for name, value in row.items()}
                for symbol, row in table.iterrows()
            }
        return summary

    def console_text(self) -> str:
        """The console summary table followed by the report's path."""
        from backtest.report import format_summary

        engine = ""
        if self.results.meta.get("engine") == "array":
            engine = "engine: array (the strategy's decide over whole arrays, simulated)\n"
        return f"{format_summary(self.metrics)}\n{engine}report: {self.report_path}"


def warn_rejected(results: Results) -> str | None:
    """Log one warning naming how many orders the broker refused and the first one's reason.

    Returns the message (None when no order was refused).
    """
    rejected = getattr(results, "rejected", None)
    if rejected is None or rejected.empty:
        return None
    first = rejected.iloc[0]
    where = f" {first['symbol']}" if "symbol" in rejected.columns else ""
    message = (
        f"warning: the broker refused {len(rejected):,} order(s); the first, a {first['side']}"
        f"{where} of {float(first['size']):,.6g} at {pd_time(first['time'])}: {first['reason']} "
        "(all are listed in the report and rejected.parquet)"
    )
    logging.getLogger("backtest.run").warning(message)
    return message


def pd_time(value: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM UTC`` (the text itself otherwise)."""
    strftime = getattr(value, "strftime", None)
    return strftime("%Y-%m-%d %H:%M UTC") if callable(strftime) else str(value)


def _plain_number(value: Any) -> Any:
    """A NumPy scalar as a Python int or float (JSON output)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def prepare(
    settings: Mapping[str, Any], *, resolve: Callable[[str], type[Strategy]] | None = None
) -> tuple[Any, type[Strategy]]:
    """Resolve the strategy, check its parameters and build the run configuration.

    ``resolve`` turns the strategy's name or file into its class (default
    :func:`backtest.plugins.resolve_strategy`; sweeps pass a per-process cache of it).

    Raises
    ------
    ConfigError, PluginError
        For unknown strategies or parameters, wrongly typed values, or invalid settings.
    """
    from backtest.engine import RunConfig
    from backtest.plugins import coerce_parameters, resolve_strategy

    values = dict(settings)
    strategy_spec = values.get("strategy") or RunConfig().strategy
    strategy_class = (resolve or resolve_strategy)(str(strategy_spec))
    values["strategy"] = strategy_spec
    values["params"] = coerce_parameters(strategy_class, values.get("params") or {})
    values["map_params"] = check_map_parameters(values.get("map_params") or {})
    try:
        config = RunConfig.from_dict(values)
    except TypeError as error:  # an unexpected key reached the dataclass
        raise ConfigError(f"invalid run settings: {error}") from error
    return config, strategy_class


def check_map_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Convert ``--map``/``[map]`` values to MapParams' field types and validate them.

    Raises
    ------
    ConfigError
        For an unknown name (with "did you mean"), a wrongly typed or an invalid value.
    """
    from backtest.liquidation.heatmap import MapParams
    from backtest.plugins import coerce_values

    defaults = {
        item.name: getattr(MapParams(), item.name) for item in dataclasses.fields(MapParams)
    }
    defaults.pop("cascade")  # a table of CascadeParams fields, checked when the map is built
    cascade = raw.get("cascade")
    converted = coerce_values(
        "MapParams", defaults, {k: v for k, v in raw.items() if k != "cascade"}
    )
    MapParams.from_dict(converted)  # value checks (ranges, weights summing to 1, ...)
    cascade = cascade_setting(cascade)
    if cascade is not None:
        converted["cascade"] = cascade
    return converted


def cascade_setting(value: Any) -> dict[str, Any] | None:
    """Read the map's ``cascade`` setting: on/off from ``--map cascade=true``, or its fields.

    ``true`` (also yes/on/1) turns the ``cascade_risk`` line on with the default
    :class:`~backtest.liquidation.cascade.CascadeParams`, ``false`` (no/off/0) or nothing leaves
    it off, and a table (``[map.cascade]`` in a run file) sets its fields.

    Returns
    -------
    dict or None
        CascadeParams fields (``{}`` = defaults), or None when the cascade is off.

    Raises
    ------
    ConfigError
        For any other value, an unknown field or an invalid field value.
    """
    from backtest.liquidation.cascade import CascadeParams
    from backtest.plugins import convert_value

    if value is None:
        return None
    if isinstance(value, str | bool):
        try:
            enabled = convert_value("map parameter 'cascade'", value, False)
        except ConfigError:
            raise ConfigError(
                f"map parameter 'cascade' takes true or false (--map cascade=true turns on the "
                f"cascade_risk line with default settings), got {value!r}; set its fields in a "
                "[map.cascade] table of a run file"
            ) from None
        return {} if enabled else None
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"map parameter 'cascade' takes true, false or a table of CascadeParams fields, "
            f"got {value!r}"
        )
    fields = [item.name for item in dataclasses.fields(CascadeParams)]
    unknown = [key for key in value if key not in fields]
    if unknown:
        raise ConfigError(f"CascadeParams has no field {unknown[0]!r}; fields: {', '.join(fields)}")
    try:
        CascadeParams(**dict(value))
    except (TypeError, ValueError, OverflowError) as error:
        raise ConfigError(f"map parameter 'cascade': {error}") from None
    return dict(value)


def execute_run(
    settings: Mapping[str, Any],
    *,
    report_folder: Path | None = None,
    reports_root: Path = Path("reports"),
    progress: bool = False,
    write_html: bool = True,
    map_lines: tuple[str, ...] = (),
    engine: str = "event",
) -> RunOutcome:
    """Run a backtest and write its folder (results, metrics, report).

    Parameters
    ----------
    settings : mapping
        RunConfig fields, as read by :func:`backtest.config.read_toml` and merged with flags.
    report_folder : Path, optional
        Where to write; ``reports_root / <run-id>`` when omitted.  It must be missing, empty or
        an earlier run folder (marked ``.backtest-run``); it is replaced atomically.
    reports_root : Path
        Parent of the default run folder.
    progress : bool
        Show a progress bar on standard error.
    write_html : bool
        Also render ``report.html`` (the saved results can always be rendered later).
    map_lines : tuple of str
        Map lines drawn as panels under the report's price chart (``--map-lines``).
    engine : {"event", "array", "auto"}
        ``event``: backtrader bar by bar; ``array``: the strategy's ``decide`` through the array
        simulator (:func:`backtest.arrays.run.run_arrays`, single symbol); ``auto``: the array
        path when the strategy has one and the run is single-symbol.

    Returns
    -------
    RunOutcome

    Raises
    ------
    ConfigError
        Besides bad settings: when ``report_folder`` exists and is not a run folder (checked
        before the backtest runs, and again before the swap).
    """
    from backtest.engine import run
    from backtest.report import compute_metrics, write_report

    if report_folder is not None:
        check_writable_target(report_folder, ("run",), "--report")
    config, strategy_class = prepare(settings)
    steps = logging.getLogger("backtest.run")
    steps.debug("settings: %s", config.to_dict())
    from backtest.arrays.run import choose_engine

    if choose_engine(engine, strategy_class, config) == "array":
        from backtest.arrays.run import run_arrays

        results = run_arrays(config, strategy_class=strategy_class, heatmap=True)
    else:
        results = run(config, strategy_class=strategy_class, progress=progress)
    warn_rejected(results)
    metrics = compute_metrics(results)
    from backtest.report.realism import run_warnings

    warnings = run_warnings(results, metrics)
    for warning in warnings:
        logging.getLogger("backtest.run").warning(f"warning: {warning}")
    folder = report_folder if report_folder is not None else reports_root / results.meta["run_id"]
    steps.debug("report: writing %s (html: %s)", folder, write_html)
    try:
        with staged_folder(folder) as staging:
            results.save(staging)
            if write_html:
                write_report(results, staging, map_lines)
    except OSError as error:
        raise ConfigError(
            f"cannot write the run to {folder}: {error.strerror or error}; "
            "pass --report DIR with a writable folder"
        ) from error
    steps.debug("report: done")
    return RunOutcome(results=results, metrics=metrics, folder=folder, warnings=warnings)
