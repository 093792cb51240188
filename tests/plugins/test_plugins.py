import textwrap

import pytest

from backtest.errors import ConfigError, PluginError
from backtest.plugins import (
    coerce_parameters,
    discover,
    parse_assignments,
    resolve_strategy,
)
from backtest.strategy import Strategy

PLUGIN = textwrap.dedent(
    '''
    import backtest


    class LocalIdea(backtest.Strategy):
        """Buys nothing, on purpose."""

        uses_clusters = False
        params = (("band", 0.03), ("hold_bars", 12), ("flip", False), ("label", "x"))

        def next(self):
            pass
    '''
)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "local_idea.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_discovers_strategy_in_working_directory(workdir):
    catalogue = discover(workdir)
    info = catalogue.strategies["LocalIdea"]
    assert info.summary == "Buys nothing, on purpose."
    assert info.parameters == {"band": 0.03, "hold_bars": 12, "flip": False, "label": "x"}
    assert info.source.endswith("local_idea.py")


def test_broken_file_is_named_with_its_cause(workdir):
    (workdir / "strategies" / "broken.py").write_text("import backtest\nimport not_a_module_xyz\n")
    (workdir / "strategies" / "syntax.py").write_text("def nope(:\n")
    catalogue = discover(workdir)
    assert "LocalIdea" in catalogue.strategies
    joined = "\n".join(catalogue.errors)
    assert "broken.py:2" in joined and "not_a_module_xyz" in joined
    assert "ModuleNotFoundError" in joined
    assert "syntax.py:1" in joined and "SyntaxError" in joined


def test_file_reference_keeps_real_cause(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError, match=r"bad\.py:1: failed to load: RuntimeError: boom") as info:
        resolve_strategy(f"{bad}:Anything")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_resolve_file_and_module_references(tmp_path, monkeypatch):
    (tmp_path / "my_pkg_plugins.py").write_text(PLUGIN)
    cls = resolve_strategy(f"{tmp_path / 'my_pkg_plugins.py'}:LocalIdea")
    assert issubclass(cls, Strategy) and cls.__name__ == "LocalIdea"
    monkeypatch.syspath_prepend(str(tmp_path))
    cls2 = resolve_strategy("my_pkg_plugins:LocalIdea")
    assert cls2.__name__ == "LocalIdea"
    with pytest.raises(PluginError, match="did you mean LocalIdea"):
        resolve_strategy("my_pkg_plugins:LocalIdaa")


def test_unknown_strategy_suggests_close_names(workdir):
    with pytest.raises(PluginError, match="did you mean LocalIdea"):
        resolve_strategy("LocalIdeas", workdir)


def test_entry_point_plugins_are_found(tmp_path, monkeypatch):
    package = tmp_path / "ep_plugin_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(PLUGIN.replace("LocalIdea", "FromEntryPoint"))
    dist = tmp_path / "ep_plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[backtest.strategies]\nfrom_ep = ep_plugin_pkg:FromEntryPoint\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    catalogue = discover(tmp_path)
    assert catalogue.strategies["FromEntryPoint"].source.startswith("entry point from_ep")


def test_newer_interface_is_refused(tmp_path):
    (tmp_path / "future.py").write_text(
        PLUGIN.replace("uses_clusters = False", "uses_clusters = False\n    INTERFACE_VERSION = 99")
    )
    with pytest.raises(PluginError, match="interface 99"):
        resolve_strategy(f"{tmp_path / 'future.py'}:LocalIdea")


def test_parameters_are_converted_to_the_default_types(tmp_path):
    (tmp_path / "p.py").write_text(PLUGIN)
    cls = resolve_strategy(f"{tmp_path / 'p.py'}:LocalIdea")
    raw = parse_assignments(["band=0.05", "hold_bars=24", "flip=yes", "label=fade"])
    assert coerce_parameters(cls, raw) == {
        "band": 0.05,
        "hold_bars": 24,
        "flip": True,
        "label": "fade",
    }
    assert coerce_parameters(cls, {"band": 1, "hold_bars": 3}) == {"band": 1.0, "hold_bars": 3}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"bnad": "0.1"}, r"no parameter 'bnad': did you mean band\?"),
        ({"band": "wide"}, r"'band' expects float \(default 0.03\), got 'wide'"),
        ({"hold_bars": "1.5"}, r"'hold_bars' expects int"),
        ({"flip": "maybe"}, r"'flip' expects bool .* use true or false"),
        ({"hold_bars": True}, r"'hold_bars' expects int"),
    ],
)
def test_bad_parameters_are_rejected(tmp_path, raw, message):
    (tmp_path / "p.py").write_text(PLUGIN)
    cls = resolve_strategy(f"{tmp_path / 'p.py'}:LocalIdea")
    with pytest.raises(ConfigError, match=message):
        coerce_parameters(cls, raw)


def test_assignment_without_equals_sign_is_rejected():
    with pytest.raises(ConfigError, match=r"expected name=value"):
        parse_assignments(["band"])
