"""The one exception type that the command line turns into a one-line message."""

from __future__ import annotations


class HbensError(Exception):
    """Bad input or a refused operation, described in one line for the user."""


def located(path: object, line: int | None, problem: str) -> str:
    """Format a problem as ``file:line: problem`` (line omitted when unknown)."""
    where = f"{path}:{line}" if line is not None else f"{path}"
    return f"{where}: {problem}"
