"""How the kernels were compiled: lets tests prove the debug switch really reached the C code."""

cdef extern from *:
    """
    #ifdef BACKTEST_DEBUG_BUILD
    #define BACKTEST_IS_DEBUG 1
    #else
    #define BACKTEST_IS_DEBUG 0
    #endif
    """
    int BACKTEST_IS_DEBUG


def debug_build():
    """Return True when built with ``BACKTEST_DEBUG=1`` (bounds checks on)."""
    return BACKTEST_IS_DEBUG == 1


def read_element(const double[::1] values, Py_ssize_t index):
    """Return ``values[index]`` with the build's indexing directives.

    In a debug build an out-of-range index raises ``IndexError``; in a release build it is not
    checked, so only call it with a bad index when :func:`debug_build` is true.
    """
    return values[index]
