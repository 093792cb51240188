"""Market tests: helpers importable as modules, and no network at all."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that tries to open a real connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("tests/market must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
