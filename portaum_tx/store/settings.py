"""Cluster-wide settings: values every node must agree on (the shared secret)."""

from __future__ import annotations

import secrets


class SettingsStore:
    def __init__(self, db):
        self._db = db

    async def get_setting(self, name: str) -> str | None:
        rows = await self._db.execute("get_setting", "SELECT value FROM settings WHERE name = ?",
                                      (name,))
        return rows[0][0] if rows else None

    async def set_setting(self, name: str, value: str) -> None:
        await self._db.execute(
            "set_setting", "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (name, value))

    async def get_or_create_secret(self, name: str = "cluster_secret") -> str:
        """A random secret created once and then shared by every node."""
        async def get_or_create(txn):
            await txn.execute("INSERT INTO settings (name, value) VALUES (?, ?) "
                              "ON CONFLICT (name) DO NOTHING", (name, secrets.token_hex(32)))
            return (await txn.execute("SELECT value FROM settings WHERE name = ?", (name,)))[0][0]
        return await self._db.run_interaction("get_or_create_secret", get_or_create)
