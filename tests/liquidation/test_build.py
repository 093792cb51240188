import os

import numpy as np
import pytest

from backtest.errors import BuildError
from backtest.liquidation._native import load_kernel

pytestmark = pytest.mark.kernel

DEBUG_REQUESTED = os.environ.get("BACKTEST_DEBUG", "0").lower() not in ("", "0", "false", "no")


def test_build_matches_debug_switch():
    buildinfo = load_kernel("_buildinfo")
    assert buildinfo.debug_build() is DEBUG_REQUESTED


@pytest.mark.skipif(not DEBUG_REQUESTED, reason="bounds checks exist only in the debug build")
def test_debug_build_checks_bounds():
    buildinfo = load_kernel("_buildinfo")
    with pytest.raises(IndexError):
        buildinfo.read_element(np.arange(3.0), 3)


def test_kernel_reads_read_only_arrays():
    buildinfo = load_kernel("_buildinfo")
    values = np.arange(4.0)
    values.flags.writeable = False
    assert buildinfo.read_element(values, 3) == 3.0


def test_missing_kernel_says_how_to_build():
    with pytest.raises(BuildError, match=r"pip install -e \."):
        load_kernel("_not_built")
