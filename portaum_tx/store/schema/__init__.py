"""Numbered schema migrations, applied in order at start-up.

Each ``NNNN_name.sql`` file is one migration, run in one transaction.
Statements end with ``;`` at the end of a line.  Engine-specific type names
are written as ``{ID}``, ``{BLOB}``, ``{BIGINT}``, ``{NUMERIC}``.  Never edit a
migration that has shipped: add the next number.
"""

from __future__ import annotations

import os
import re

_HERE = os.path.dirname(__file__)


def migrations() -> list[tuple[int, str, str]]:
    """``(version, name, sql)`` for every migration, in order."""
    found = []
    for filename in os.listdir(_HERE):
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", filename)
        if match:
            with open(os.path.join(_HERE, filename), encoding="utf-8") as handle:
                found.append((int(match.group(1)), match.group(2), handle.read()))
    found.sort()
    versions = [version for version, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"schema migrations are not numbered 1..n: {versions}")
    return found


def statements(sql: str, types: dict[str, str]) -> list[str]:
    """Split a migration into statements with the engine's type names filled in."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    for name, spelling in types.items():
        text = text.replace("{" + name + "}", spelling)
    return [part.strip() for part in re.split(r";\s*\n", text + "\n") if part.strip()]


LATEST = len(migrations())
