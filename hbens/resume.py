"""The resume record: what a written store was made from, and why it cannot stand for a new run.

``hbens predict --resume`` and ``hbens import --resume`` keep a store only when the record in its
metadata (``meta["made"]``) equals the one the run would write; otherwise the store is redone and
the run counts why.
"""

from __future__ import annotations

from typing import Sequence

Check = tuple[str | tuple[str, ...], str | None]
"""Keys of a record and the reason when they differ; a reason of None marks a dict of command options."""


def stale_reason(stored: object, expected: dict[str, object], *, checks: Sequence[Check],
                 unrecorded: str) -> str | None:
    """Why a store recorded as ``stored`` cannot stand for ``expected``; None when they are equal.

    ``checks`` are tried in order: the first whose keys differ gives the reason; for a dict of
    options (reason None) it is ``another --NAME`` of its first differing option.  A record that is
    not a dict gives ``unrecorded``; records that differ elsewhere, ``another hbens``.

    Examples
    --------
    >>> checks = (("image", "another image"), ("options", None))
    >>> stale_reason({"image": 1, "options": {"tta": "none"}}, {"image": 1, "options": {"tta": "flip"}},
    ...              checks=checks, unrecorded="no record")
    'another --tta'
    >>> stale_reason(None, {"image": 1}, checks=checks, unrecorded="no record")
    'no record'
    """
    if stored == expected:
        return None
    if not isinstance(stored, dict):
        return unrecorded
    for keys, reason in checks:
        keys = (keys,) if isinstance(keys, str) else keys
        if reason is None:
            options = stored.get(keys[0]) if isinstance(stored.get(keys[0]), dict) else {}
            changed = [name for name, value in expected[keys[0]].items() if options.get(name) != value]
            if changed:
                return f"another --{changed[0].replace('_', '-')}"
        elif any(stored.get(key) != expected[key] for key in keys):
            return reason
    return "another hbens"
