#!/usr/bin/env python3
"""Run the README's command examples on a finished demo's outputs.

Usage::

    .venv/bin/python tools/check_readme.py DEMO_PARENT [--readme README.md] [--keep]

``DEMO_PARENT`` is the folder that holds ``demo-output/`` (made by ``hbens demo -o demo-output``
with the current code). It is copied into a scratch folder first, so the examples' outputs never
land in it.

Every code block of the README that holds a ``$ hbens`` line is run, line by line, in the order
written: each ``$`` line (with its ``\\`` continuation lines) is a command. A block starts in the
scratch folder (the repository root of the README's examples, where ``demo-output/`` lies);
``$ cd DIR`` moves the rest of the block into DIR, and ``$ NAME=value`` lines are set for the rest
of the block. Each command runs in ``bash -o pipefail`` with the virtualenv's ``hbens`` first on
the PATH, and ``$?`` set to the exit status of the command before it. Two markers, written in a
command's comment, change what is expected:

- ``# not on the demo`` (e.g. ``# not on the demo: another team's checkpoint``): the command needs
  files or machines that the demo does not make; it is skipped.
- ``# fails:`` (e.g. ``# fails: -o is an input``): the command is shown failing on purpose; it
  passes when it exits non-zero without a traceback.

Any other command passes when it exits 0 without a traceback. One line is printed per command
(``ok``, ``FAILED`` or ``skipped``, the exit status, the README line); the exit status is 1 when
any command failed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKIP_MARKER = "# not on the demo"
"""A command carrying this in its comment needs what the demo does not make: skipped."""
FAILS_MARKER = "# fails:"
"""A command carrying this in its comment must exit non-zero (without a traceback)."""
TIMEOUT_S = 900
"""The most seconds one command may take."""

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")


@dataclasses.dataclass
class Command:
    """One ``$`` line of a README code block.

    Attributes
    ----------
    line : int
        The 1-based README line of the ``$``.
    text : str
        The command, continuation lines joined, without the ``$ `` prompt.
    """

    line: int
    text: str


def code_blocks(readme: str) -> list[list[Command]]:
    """Return the commands of every fenced code block that runs ``hbens``.

    Parameters
    ----------
    readme : str
        The README's text.

    Returns
    -------
    list of list of Command
        One list per block holding at least one ``$ hbens`` line, in README order.
    """
    blocks: list[list[Command]] = []
    current: list[Command] = []
    fence: str | None = None  # None outside a block, "" in a bare block, else its language
    continuing = False
    for number, raw in enumerate(readme.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```"):
            if fence is None:
                fence, current = stripped[3:].strip(), []
            else:
                if fence == "" and any(c.text.startswith("hbens ") for c in current):
                    blocks.append(current)
                fence, continuing = None, False
            continue
        if fence != "":
            continue
        if continuing:
            current[-1].text = current[-1].text[:-1].rstrip() + " " + stripped
        elif stripped.startswith("$ "):
            current.append(Command(number, stripped[2:].strip()))
        else:
            continue
        continuing = stripped.endswith("\\")
    return blocks


def run_block(block: list[Command], root: Path, env: dict[str, str]) -> list[tuple[str, int | None, Command, str]]:
    """Run one block's commands from ``root``, following its ``cd`` and ``NAME=value`` lines.

    Parameters
    ----------
    block : list of Command
        The block's commands.
    root : Path
        The scratch folder holding ``demo-output/``.
    env : dict
        The environment of every command.

    Returns
    -------
    list of tuple
        Per command: the verdict (``ok``, ``FAILED``, ``skipped``), the exit status (None when
        not run), the command, and its output when it failed.
    """
    results = []
    cwd, assignments, previous = root, [], 0
    for command in block:
        if SKIP_MARKER in command.text:
            results.append(("skipped", None, command, ""))
            continue
        words = command.text.split("#", 1)[0].split()
        if words and words[0] == "cd":
            target = (cwd / words[1]).resolve() if len(words) > 1 else root
            ok = target.is_dir()
            cwd = target if ok else cwd
            results.append(("ok" if ok else "FAILED", 0 if ok else 1, command, f"no folder {target}"))
            continue
        if len(words) == 1 and _ASSIGNMENT.match(words[0]):
            assignments.append(words[0])
            results.append(("ok", 0, command, ""))
            continue
        # $? starts as the previous command's status, so that `echo $?` shows it
        script = "".join(f"{a}; " for a in assignments) + f"(exit {previous}); " + command.text
        try:
            done = subprocess.run(["bash", "-o", "pipefail", "-c", script], check=False, cwd=cwd, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=TIMEOUT_S)
            status, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            status, output = None, f"still running after {TIMEOUT_S} s"
        previous = 1 if status is None else status
        expect_failure = FAILS_MARKER in command.text
        clean = status is not None and "Traceback (most recent call last)" not in output
        passed = clean and ((status != 0) if expect_failure else (status == 0))
        results.append(("ok" if passed else "FAILED", status, command, "" if passed else output))
    return results


def hbens_environment(repo: Path) -> dict[str, str]:
    """Return the environment with the virtualenv's ``bin`` first on the PATH.

    Parameters
    ----------
    repo : Path
        The repository root (its ``.venv`` is used when present, else this interpreter's).

    Returns
    -------
    dict
        A copy of ``os.environ`` with PATH changed.
    """
    venv_bin = repo / ".venv" / "bin"
    if not (venv_bin / "hbens").exists():
        venv_bin = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def _finished_demo(demo: Path) -> bool:
    """Return whether ``demo`` holds the marker of a finished ``hbens demo``."""
    try:
        return json.loads((demo / ".hbens-demo.json").read_text(encoding="utf-8")).get("demo") == "finished"
    except (OSError, ValueError, AttributeError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Copy the demo's outputs to a scratch folder, run the README's examples there, report.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every command passed, 1 when any failed, 2 on a usage error.
    """
    repo = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("demo_parent", type=Path, help="the folder that holds demo-output/")
    parser.add_argument("--readme", type=Path, default=repo / "README.md")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and print it")
    args = parser.parse_args(argv)
    demo = args.demo_parent / "demo-output"
    if not _finished_demo(demo):
        parser.error(f"{demo} is not a finished demo's output; run hbens demo -o {demo} first")
    blocks = code_blocks(args.readme.read_text(encoding="utf-8"))
    scratch = Path(tempfile.mkdtemp(prefix="check-readme."))
    failed = 0
    try:
        shutil.copytree(demo, scratch / "demo-output", symlinks=True)
        env = hbens_environment(repo)
        for block in blocks:
            started = time.monotonic()
            for verdict, status, command, output in run_block(block, scratch, env):
                code = "-" if status is None else str(status)
                print(f"{verdict:8} rc={code:3} {args.readme.name}:{command.line:<4} {command.text[:110]}",
                      flush=True)
                if verdict == "FAILED":
                    failed += 1
                    for line in output.strip().splitlines()[-5:]:
                        print(f"    | {line}")
            print(f"         ({time.monotonic() - started:.0f} s for this block)", flush=True)
    finally:
        if args.keep:
            print(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"{failed} command(s) failed" if failed else "every README command ran as written")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
