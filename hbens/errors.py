"""The exception types that the command line turns into a one-line message (usage errors: exit 2)."""

from __future__ import annotations


class HbensError(Exception):
    """Bad input or a refused operation, described in one line for the user."""


class UsageError(HbensError):
    """Arguments that do not go together (the command line's usage errors, exit status 2).

    ``option`` names the option at fault, when one is; the message then reads as click's.
    """

    def __init__(self, message: str, option: str | None = None):
        super().__init__(f"Invalid value for {option}: {message}" if option else message)
        self.message, self.option = message, option


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
