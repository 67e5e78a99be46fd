"""Prompts uploaded by operators (per brand and language), shared by all nodes."""

from __future__ import annotations


class PromptStore:
    def __init__(self, db, clock):
        self._db = db
        self._clock = clock

    async def store_prompt(self, brand: str, language: str, name: str, audio: bytes) -> None:
        now = int(self._clock.seconds())

        async def store(txn):
            await txn.execute(
                "INSERT INTO prompts (brand, language, name, audio, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (brand, language, name) DO UPDATE SET audio = excluded.audio, "
                "updated = excluded.updated", (brand, language, name, audio, now))
        await self._db.run_interaction("store_prompt", store)

    async def get_prompt(self, brand: str, language: str, name: str) -> bytes | None:
        rows = await self._db.execute(
            "get_prompt", "SELECT audio FROM prompts WHERE brand = ? AND language = ? AND name = ?",
            (brand, language, name))
        return rows[0][0] if rows else None

    async def get_prompt_list(self, brand: str | None = None) -> list[tuple[str, str, str, int, int]]:
        """``(brand, language, name, size, updated)`` of the stored prompts."""
        sql = "SELECT brand, language, name, LENGTH(audio), updated FROM prompts"
        args: tuple = ()
        if brand is not None:
            sql += " WHERE brand = ?"
            args = (brand,)
        rows = await self._db.execute("get_prompt_list", sql + " ORDER BY brand, language, name", args)
        return [tuple(row) for row in rows]

    async def delete_prompt(self, brand: str, language: str, name: str) -> bool:
        rows = await self._db.execute(
            "delete_prompt", "DELETE FROM prompts WHERE brand = ? AND language = ? AND name = ? "
            "RETURNING id", (brand, language, name))
        return bool(rows)
