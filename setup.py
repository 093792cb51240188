"""Build script: cythonizes ``ext/*.pyx`` into ``backtest.liquidation._<name>``.

A source listed in ``PACKAGE_OF`` lands in that package instead (the simulator kernel
``ext/_simulate.pyx`` becomes ``backtest.arrays._simulate``).

Compiler directives live here and only here (no ``# cython:`` headers in the sources), so that
``BACKTEST_DEBUG=1 pip install -e .`` really does turn bounds and wraparound checks on for
every kernel.  ``BACKTEST_ANNOTATE=1`` also writes Cython's HTML annotation next to each source.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

HERE = Path(__file__).parent
DEBUG = os.environ.get("BACKTEST_DEBUG", "0").lower() not in ("", "0", "false", "no")
ANNOTATE = os.environ.get("BACKTEST_ANNOTATE", "0").lower() not in ("", "0", "false", "no")

COMPILER_DIRECTIVES = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "nonecheck": DEBUG,
    "cdivision": not DEBUG,
    "infer_types": True,
    "embedsignature": True,
}
C_FLAGS = ["-O0", "-g"] if DEBUG else ["-O3"]
MACROS = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    MACROS.append(("BACKTEST_DEBUG_BUILD", "1"))

#: Package of each kernel that does not belong to ``backtest.liquidation``.
PACKAGE_OF: dict[str, str] = {"_simulate": "backtest.arrays"}

extensions = [
    Extension(
        f"{PACKAGE_OF.get(source.stem, 'backtest.liquidation')}.{source.stem}",
        [str(source.relative_to(HERE))],
        include_dirs=[numpy.get_include()],
        extra_compile_args=C_FLAGS,
        define_macros=MACROS,
    )
    for source in sorted((HERE / "ext").glob("*.pyx"))
]


def _bundled_data() -> list[tuple[str, list[str]]]:
    """The sample and tier snapshots, for regular (non-editable) installs: see backtest/_paths."""
    groups: dict[str, list[str]] = {}
    bundled = [*(HERE / "data" / "sample").rglob("*"), *(HERE / "data" / "tiers").rglob("*")]
    for path in sorted(bundled):
        if path.is_file() and path.suffix in {".parquet", ".json", ".md"}:
            folder = path.parent.relative_to(HERE)
            groups.setdefault(f"share/backtest-liquidation/{folder}", []).append(
                str(path.relative_to(HERE))
            )
    return sorted(groups.items())


setup(
    name="backtest-liquidation",
    version="0.1.0",
    description=(
        "Liquidation-aware backtesting of crypto perpetual futures: a Cython model of "
        "liquidation clusters plugged into backtrader"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["backtest", "backtest.*", "strategies"]),
    package_data={
        "backtest": ["py.typed", "report/templates/*", "liquidation/*.pyi", "arrays/*.pyi"],
    },
    data_files=_bundled_data(),
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        annotate=ANNOTATE,
        force=DEBUG,
    ),
    install_requires=[
        "backtrader>=1.9.78",
        "pandas>=2.1",
        "numpy>=1.26",
        "pyarrow>=15",
        "ta>=0.11",
        "ccxt>=4.3",
        "Cython>=3.0",
        "matplotlib>=3.8",
        "plotly>=5.20",
        "tqdm>=4.66",
        "dask[distributed]>=2024.1",
        "optuna>=5.0",
        "scipy>=1.11",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "empyrical-reloaded>=0.7"],
        # competitors of tests/bench/bench_array.py (tested: backtesting 0.6.6, vectorbt 1.2.0)
        "bench": ["backtesting>=0.6.5", "vectorbt>=1.2"],
    },
    entry_points={"console_scripts": ["backtest=backtest.cli:main"]},
    zip_safe=False,
)
