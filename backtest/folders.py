"""Folders this program writes: how they are marked, replaced atomically and cleaned after a kill.

Marker
    Every run folder, sweep folder and ``report --output`` folder holds a small file
    :data:`MARKER_FILE` (``.backtest-run``) naming its kind and format.  A run may replace an
    existing folder only when it carries that marker (or is empty); anything else is the user's
    and ends in a :class:`~backtest.errors.ConfigError` instead of being deleted.
Atomic replace
    :func:`staged_folder` assembles a folder under a temporary sibling name and swaps it in with
    two renames (old folder to a backup name, new folder to the target), then deletes the backup.
    A process killed at any moment leaves the old folder or the new one complete; the only
    window with neither at the target name leaves the old one under its backup name, which
    :func:`clean_temporaries` renames back on the next start.
Temporary names
    Every temporary file or folder this program creates is named
    ``.<name>.backtest-<tmp|old>-<pid>-<8 letters or digits>`` (files add ``.tmp``).
    :func:`clean_temporaries` removes only entries of exactly that pattern whose process is
    gone, never anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from backtest.errors import ConfigError
from backtest.strict_json import dumps

#: Name of the marker file inside every folder this program writes.
MARKER_FILE = ".backtest-run"
#: Version of the marker's content.
MARKER_FORMAT = 1
#: Marker kinds.
RUN, SWEEP, REPORT = "run", "sweep", "report"

#: ``.<name>.backtest-<tmp|old>-<pid>-<token>[.tmp]``: the only names the cleanup touches.
TEMPORARY_PATTERN = re.compile(
    r"^\.(?P<name>.+)\.backtest-(?P<kind>tmp|old)-(?P<pid>[0-9]+)-(?P<token>[0-9a-z_]{8})"
    r"(?P<file>\.tmp)?$"
)


# --------------------------------------------------------------------------------------------
# temporary names
# --------------------------------------------------------------------------------------------
def temporary_path(target: Path, kind: str = "tmp", *, file: bool = False) -> Path:
    """A sibling of ``target`` named by the program's temporary pattern (see the module doc).

    Parameters
    ----------
    target : Path
        The file or folder the temporary one will become (or was).
    kind : str
        ``"tmp"`` for something being written, ``"old"`` for a replaced folder's backup.
    file : bool
        Add the ``.tmp`` suffix (temporary files).
    """
    suffix = ".tmp" if file else ""
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.backtest-{kind}-{os.getpid()}-{token}{suffix}")


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process (or a value we cannot check): keep it
    return True


def clean_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed runs of this program left in ``folder`` (not recursive).

    Only entries named by :func:`temporary_path` whose process no longer runs are touched.  A
    backup of a replaced folder (``.<name>.backtest-old-...``) whose target is missing is
    renamed back to ``<name>`` (the run was killed between the two renames of a replace);
    otherwise it is deleted, as are temporary files and half-assembled folders.  Errors
    (permissions, races with another process) are ignored: the cleanup never stops a command.

    Returns
    -------
    list of Path
        The entries removed or restored.
    """
    path = Path(folder)
    touched: list[Path] = []
    try:
        entries = list(path.iterdir())
    except OSError:
        return touched
    for entry in sorted(entries, key=lambda item: item.name):
        match = TEMPORARY_PATTERN.match(entry.name)
        if match is None or _process_alive(int(match["pid"])):
            continue
        target = entry.with_name(match["name"])
        try:
            if match["kind"] == "old" and not target.exists() and not target.is_symlink():
                entry.rename(target)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        touched.append(entry)
    return touched


def write_atomic(target: Path, data: str | bytes) -> Path:
    """Write ``data`` to a temporary sibling, flush it and rename it over ``target``."""
    temporary = temporary_path(target, file=True)
    try:
        with temporary.open("wb") as sink:
            sink.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return target


@contextlib.contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling path for a writer; rename it over ``target`` on success."""
    temporary = temporary_path(target, file=True)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


# --------------------------------------------------------------------------------------------
# markers
# --------------------------------------------------------------------------------------------
def write_marker(folder: Path, kind: str) -> Path:
    """Mark ``folder`` as written by this program (kind ``run``, ``sweep`` or ``report``)."""
    document = {"program": "backtest", "kind": kind, "format": MARKER_FORMAT}
    return write_atomic(folder / MARKER_FILE, dumps(document) + "\n")


def marker_kind(folder: str | os.PathLike[str]) -> str | None:
    """The kind recorded in ``folder``'s marker, or None when it has no readable marker."""
    marker = Path(folder) / MARKER_FILE
    try:
        if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > 4096:
            return None
        document = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("program") != "backtest":
        return None
    kind = document.get("kind")
    return kind if isinstance(kind, str) else None


def _is_empty_folder(path: Path) -> bool:
    try:
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())
    except OSError:
        return False


def check_writable_target(
    folder: str | os.PathLike[str], kinds: tuple[str, ...], option: str
) -> Path:
    """Check that this program may write ``folder``; return it as an absolute path.

    ``folder`` may be missing, an empty folder or a folder whose marker is one of ``kinds``.
    The current folder, its parents, the file-system root and the user's home are refused
    whatever they hold.

    Parameters
    ----------
    folder : path-like
        The target.
    kinds : tuple of str
        Marker kinds that may be overwritten or replaced.
    option : str
        The flag that chose the folder, for the message (e.g. ``--report``).

    Raises
    ------
    ConfigError
        One line saying why and what to do.
    """
    path = Path(os.path.abspath(os.fspath(folder)))
    remedy = f"choose another {option} folder or delete it yourself"
    cwd = Path(os.path.abspath(os.getcwd()))
    if not path.name or path == cwd or path in cwd.parents or path == Path.home():
        raise ConfigError(
            f"{option} {folder}: refusing to write a run over {path} (the current folder, a "
            f"parent of it, the root or your home): choose a new folder, e.g. {option} "
            "reports/my-run"
        )
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise ConfigError(f"{option} {folder}: {path} exists and is not a folder: {remedy}")
    if not path.exists() or _is_empty_folder(path):
        return path
    kind = marker_kind(path)
    if kind is None:
        raise ConfigError(
            f"{option} {folder}: {path} already exists and was not written by backtest (no "
            f"{MARKER_FILE} marker); nothing was changed: {remedy}"
        )
    if kind not in kinds:
        raise ConfigError(
            f"{option} {folder}: {path} is a {kind} folder of backtest, not a "
            f"{' or '.join(kinds)} folder; nothing was changed: {remedy}"
        )
    return path


# --------------------------------------------------------------------------------------------
# atomic replace
# --------------------------------------------------------------------------------------------
def _pause(step: str) -> None:
    """Test hook: ``BACKTEST_TEST_PAUSE=<step>:<seconds>`` sleeps at that step of a replace."""
    setting = os.environ.get("BACKTEST_TEST_PAUSE")
    if not setting:
        return
    name, _, seconds = setting.partition(":")
    if name == step:
        import time

        time.sleep(float(seconds or 1))


@contextlib.contextmanager
def staged_folder(folder: str | os.PathLike[str], *, kind: str = RUN) -> Iterator[Path]:
    """Assemble a folder under a temporary name and swap it into place only on success.

    Yields the temporary folder (created empty, a sibling of ``folder``).  When the block
    finishes, the marker is written into it and it replaces ``folder``: an existing ``folder``
    (which must be empty or carry a marker of the same ``kind``) is renamed to a backup name,
    the new one renamed into place and the backup deleted.  When the block raises, the
    temporary folder is removed and ``folder`` is left as it was.

    Raises
    ------
    ConfigError
        When ``folder`` exists and may not be replaced (see :func:`check_writable_target`).
    """
    target = check_writable_target(folder, (kind,), "--report" if kind == RUN else "folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_temporaries(target.parent)
    staging = temporary_path(target)
    staging.mkdir()
    try:
        yield staging
        write_marker(staging, kind)
        _pause("staged")
        _swap_into_place(staging, target, kind)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, target: Path, kind: str) -> None:
    check_writable_target(target, (kind,), "--report" if kind == RUN else "folder")
    if not target.exists():
        with interrupts_held():
            staging.rename(target)
        return
    backup = temporary_path(target, "old")
    swapped = False
    try:
        with interrupts_held():  # Ctrl-C waits until both renames are done (or undone)
            target.rename(backup)
            _pause("swapped-out")
            try:
                staging.rename(target)
            except BaseException:
                backup.rename(target)
                raise
            swapped = True
        _pause("swapped-in")
    finally:
        if swapped:
            shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C back during the block and raise it (KeyboardInterrupt) when the block ends.

    In the main thread, SIGINT is recorded by a handler instead of interrupting, and blocked
    in this thread, so threads and processes started inside the block start with it blocked
    too (a worker process started here never sees the terminal's Ctrl-C).  Elsewhere (another
    thread, no POSIX signals) the block runs unprotected.
    """
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    pressed: list[int] = []
    previous_handler = signal.signal(signal.SIGINT, lambda number, frame: pressed.append(number))
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    except Exception:
        if pressed:  # the interruption is the cause (e.g. a worker killed while starting)
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)  # a pending one lands here
    if pressed:
        raise KeyboardInterrupt
