"""PostgreSQL's settings queries: the shared settings document, and a NOTIFY when a save changed it."""

from __future__ import annotations

import time
from collections.abc import Callable

from assistants.store.settings import REMOVED, changes, document

CHANNEL = "playground_settings"


class PgSettingsQueries:
    """Mixed into PostgresStore: read, save and watch the settings document."""

    def settings_version(self) -> int:
        return self._rows("SELECT COALESCE(MAX(version), 0) FROM settings")[0][0]

    def settings_document(self) -> tuple[int, dict]:
        return document(self._rows("SELECT key, value, version FROM settings"), loads=lambda v: v)

    def save_settings_document(self, values: dict, *, only_if_never_saved: bool = False) -> int | None:
        """As the SQLite store's; the NOTIFY (delivered at COMMIT, payload the version) wakes the other instances."""
        from assistants.store.postgres import _jsonb  # a NUL in a string becomes U+FFFD, as in every other JSONB

        with self.write() as c:
            rows = c.execute("SELECT key, value, version FROM settings").fetchall()
            if only_if_never_saved and rows:
                return None
            version, old = document(rows, loads=lambda v: v)
            changed = changes(old, values)
            if changed:
                version += 1
                now = time.time()
                with c.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO settings (key, value, version, updated_at) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, "
                        "updated_at = excluded.updated_at",
                        [(k, None if v is REMOVED else _jsonb(v), version, now) for k, v in changed.items()])
                c.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))
            return version

    def on_settings(self, callback: Callable[[], None]) -> bool:
        """Call `callback` whenever any instance saves changed settings; True: notifications replace fast polling."""
        self.listener().add(CHANNEL, lambda _version: callback())
        return True
