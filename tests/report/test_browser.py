"""The report in a real browser: headless Chromium, a file:// URL, the network off.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe`` (JSON messages
separated by NUL bytes on file descriptors 3 and 4), so no extra Python package is needed.  The
test records console errors, uncaught exceptions and every network request, waits until plotly
has drawn both charts, reads numbers back from the DOM and saves a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import math
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from backtest.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 25.0


def find_browser() -> str | None:
    explicit = os.environ.get("BACKTEST_CHROMIUM")
    if explicit:
        return explicit
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, browser: str, profile: Path) -> None:
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        # Copies numbered >= 10, so that dup2-ing them onto 3 and 4 cannot clobber each other.
        child_in = fcntl.fcntl(to_child_read, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_child_write, fcntl.F_DUPFD, 10)

        def place_pipes() -> None:
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        self.process = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1500,1200",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=place_pipes,  # pytest runs tests in one thread
        )
        for descriptor in {to_child_read, from_child_write, child_in, child_out}:
            os.close(descriptor)
        self.writer = to_child_write
        self.reader = from_child_read
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the browser may already be gone
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        os.close(self.writer)
        os.close(self.reader)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the browser did not answer in time")
            ready, _, _ = select.select([self.reader], [], [], remaining)
            if ready:
                chunk = os.read(self.reader, 1 << 20)
                if not chunk:
                    raise RuntimeError("the browser closed the DevTools pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=TIMEOUT
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.writer, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")


PAGE_STATE = """
(() => {
  const charts = [...document.querySelectorAll('.js-plotly-plot')];
  const cell = key => {
    const row = document.querySelector(`#metrics tr[data-key="${key}"] td`);
    return row ? row.textContent : null;
  };
  return {
    charts: charts.map(chart => ({
      id: chart.id,
      svgs: chart.querySelectorAll('svg.main-svg').length,
      candles: chart.querySelectorAll('g.trace.boxes path, .cartesianlayer .trace path').length,
      heatmaps: chart.querySelectorAll('.hm image, image').length,
      traces: (chart.data || []).length,
      width: chart.getBoundingClientRect().width,
      height: chart.getBoundingClientRect().height,
    })),
    returnCell: cell('Return [%]'),
    tradesCell: cell('# Trades'),
    liquidationsCell: cell('Liquidations'),
    tradeRows: document.querySelectorAll('#trades tbody tr').length,
    liquidatedRows: [...document.querySelectorAll('#trades td.liq')].length,
    title: document.title,
    heading: (document.querySelector('h1') || {}).textContent || '',
    injected: window.__injected === true,
    externals: [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') ||
      e.getAttribute('href')),
    pageHeight: document.documentElement.scrollHeight,
  };
})()
"""


@pytest.fixture(scope="module")
def browser() -> str:
    found = find_browser()
    if found is None:
        pytest.skip(
            "Chromium not found: install it (`apt-get install -y chromium`) or set "
            "BACKTEST_CHROMIUM; the report was not checked in a browser"
        )
    return found


def test_report_renders_offline_in_chromium(browser, simulate_run, market, tmp_path):
    name = "<script>window.__injected = true</script>Fade"
    results = simulate_run(market, strategy=name)
    page = write_report(results, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    expected_return = results.equity["value"].iloc[-1] / results.equity["value"].iloc[0] - 1

    tools = DevTools(browser, tmp_path / "profile")
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            tools.send(f"{domain}.enable", session=session)
        tools.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            session,
        )
        tools.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1500, "height": 1200, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        tools.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
        tools.wait_for("Page.loadEventFired")
        deadline = time.monotonic() + TIMEOUT
        state = tools.evaluate(session, PAGE_STATE)
        while time.monotonic() < deadline and not (
            len(state["charts"]) == 2 and all(chart["svgs"] >= 2 for chart in state["charts"])
        ):
            time.sleep(0.2)
            state = tools.evaluate(session, PAGE_STATE)
        # Let plotly finish drawing (two animation frames), then photograph the whole page.
        tools.evaluate(
            session,
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))",
        )
        height = min(int(state["pageHeight"]), 6000)
        shot = tools.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": 1500, "height": height, "scale": 1},
            },
            session,
        )
        (tmp_path / "report.png").write_bytes(base64.b64decode(shot["data"]))
    finally:
        tools.close()

    events = tools.events
    errors = [
        event["params"]
        for event in events
        if event.get("method") == "Runtime.exceptionThrown"
        or (
            event.get("method") == "Runtime.consoleAPICalled"
            and event["params"].get("type") in ("error", "assert")
        )
        or (
            event.get("method") == "Log.entryAdded"
            and event["params"]["entry"].get("level") == "error"
        )
    ]
    assert errors == []
    requests = [
        event["params"]["request"]["url"]
        for event in events
        if event.get("method") == "Network.requestWillBeSent"
    ]
    assert [url for url in requests if not url.startswith(("file:", "data:", "about:"))] == []
    assert state["externals"] == []

    charts = {chart["id"]: chart for chart in state["charts"]}
    assert set(charts) == {"chart-main", "chart-trades"}
    main = charts["chart-main"]
    assert main["svgs"] >= 2 and main["traces"] >= 10
    assert main["width"] > 1000 and main["height"] > 1000
    assert main["heatmaps"] >= 1  # the liquidation heatmap is drawn as an image
    assert main["candles"] > 100

    assert not state["injected"]
    assert "<script>" in state["heading"]  # shown as text, not run
    shown_return = float(state["returnCell"].replace(",", ""))
    assert math.isclose(shown_return, metrics["Return [%]"], abs_tol=0.005)
    assert math.isclose(shown_return, expected_return * 100, abs_tol=0.005)
    assert int(state["tradesCell"]) == len(results.trades) == metrics["# Trades"]
    assert int(state["liquidationsCell"]) == len(results.liquidations) == 1
    assert state["tradeRows"] == len(results.trades)
    assert state["liquidatedRows"] == 1
    assert (tmp_path / "report.png").stat().st_size > 50_000
