"""The one exception type that the command line turns into a one-line message."""

from __future__ import annotations


class HbensError(Exception):
    """Bad input or a refused operation, described in one line for the user."""


class Stopped(KeyboardInterrupt):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP): unwound like Ctrl-C, so that
    every atomic writer removes its temporary and every created empty folder goes again."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def located(path: object, line: int | None, problem: str) -> str:
    """Format a problem as ``file:line: problem`` (line omitted when unknown)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return f"{where}: {problem}"
