"""Access numbers: called-number patterns that start an IVR application."""

from __future__ import annotations

import dataclasses
import json

from .accounts import AlreadyExists, NotFound
from .engines import IntegrityError


@dataclasses.dataclass(frozen=True)
class AccessNumber:
    id: int
    pattern: str
    application: str
    options: dict
    created: int

    @property
    def is_prefix(self) -> bool:
        return self.pattern.endswith("%")

    def matches(self, number: str) -> bool:
        if self.is_prefix:
            return number.startswith(self.pattern[:-1])
        return number == self.pattern


def _row(row) -> AccessNumber:
    return AccessNumber(row[0], row[1], row[2], json.loads(row[3]), row[4])


_COLUMNS = "id, pattern, application, options, created"


class AccessNumberStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    async def add_access_number(self, pattern: str, application: str, options: dict) -> AccessNumber:
        now = int(self._clock.seconds())

        async def add(txn):
            try:
                rows = await txn.execute(
                    "INSERT INTO access_numbers (pattern, application, options, created) "
                    f"VALUES (?, ?, ?, ?) RETURNING {_COLUMNS}",
                    (pattern, application, json.dumps(options, sort_keys=True), now))
            except IntegrityError:
                raise AlreadyExists(f"access number {pattern} already exists") from None
            return _row(rows[0])
        return await self._db.run_interaction("add_access_number", add)

    async def set_access_number_options(self, pattern: str, application: str,
                                        options: dict) -> AccessNumber:
        rows = await self._db.execute(
            "set_access_number_options",
            f"UPDATE access_numbers SET application = ?, options = ? WHERE pattern = ? "
            f"RETURNING {_COLUMNS}", (application, json.dumps(options, sort_keys=True), pattern))
        if not rows:
            raise NotFound(f"no access number {pattern}")
        return _row(rows[0])

    async def get_access_number(self, pattern: str) -> AccessNumber:
        rows = await self._db.execute(
            "get_access_number", f"SELECT {_COLUMNS} FROM access_numbers WHERE pattern = ?",
            (pattern,))
        if not rows:
            raise NotFound(f"no access number {pattern}")
        return _row(rows[0])

    async def get_access_numbers(self) -> list[AccessNumber]:
        rows = await self._db.execute(
            "get_access_numbers", f"SELECT {_COLUMNS} FROM access_numbers ORDER BY pattern")
        return [_row(row) for row in rows]

    async def get_access_number_for(self, called: str) -> AccessNumber | None:
        """The access number a call to ``called`` reaches: an exact match
        first, else the longest matching prefix pattern."""
        # Exact patterns are an index lookup; prefix patterns are few (an
        # operator's handful), so they are matched here rather than in SQL
        # where LIKE escaping differs between engines.
        rows = await self._db.execute(
            "get_access_number_for",
            f"SELECT {_COLUMNS} FROM access_numbers WHERE pattern = ? OR pattern LIKE '%\\%' "
            "ESCAPE '\\'", (called,))
        candidates = [_row(row) for row in rows]
        exact = [c for c in candidates if not c.is_prefix and c.pattern == called]
        if exact:
            return exact[0]
        prefixes = [c for c in candidates if c.is_prefix and c.matches(called)]
        return max(prefixes, key=lambda c: len(c.pattern), default=None)

    async def delete_access_number(self, pattern: str) -> None:
        rows = await self._db.execute(
            "delete_access_number", "DELETE FROM access_numbers WHERE pattern = ? RETURNING id",
            (pattern,))
        if not rows:
            raise NotFound(f"no access number {pattern}")
