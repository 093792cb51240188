"""Pure-Python twins of the compiled kernels: the executable specification.

Each module here mirrors one ``ext/_<name>.pyx`` kernel with the same function names, inputs
and outputs, written for clarity rather than speed.  Tests compare every kernel against its
twin with ``numpy.testing.assert_allclose``.
"""
