"""Helpers shared by the file-safety tests: the one-line error and a folder's exact content."""

from __future__ import annotations

from pathlib import Path


def one_error_line(capsys) -> str:
    """The single ``error: …`` line on standard error (asserting there is no traceback)."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its bytes, to prove nothing changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
