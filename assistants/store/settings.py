"""The shared settings document (servers, keys bound to their URL, model aliases, the default model): one row per key.

The same document the Playground once kept in `<data dir>/settings.json`, now in the database, so every instance
sharing the database reads it. A key that goes is kept as a row without a value, so the version (the newest row's)
only ever grows: polling `MAX(version)` is how another process notices a change (SQLite; PostgreSQL also NOTIFYs).
"""

from __future__ import annotations

import json
import time
from typing import Any

REMOVED = None  # the value column of a key the document no longer has (a key set to null is a key removed)


def document(rows: list[tuple[str, Any, int]], loads=json.loads) -> tuple[int, dict]:
    """(version, document) from every (key, value, version) row; a row without a value is a removed key."""
    version = max((r[2] for r in rows), default=0)
    return version, {key: loads(value) for key, value, _ in rows if value is not None}


def changes(old: dict, new: dict) -> dict[str, Any]:
    """key -> new value (REMOVED for a key that went) of every key that differs between two documents."""
    if not isinstance(new, dict) or not all(isinstance(k, str) for k in new):
        raise ValueError("the settings must be a JSON object with string keys")
    out: dict[str, Any] = {k: v for k, v in new.items() if k not in old or old[k] != v}
    out.update({k: REMOVED for k in old if k not in new})
    return out


SQLITE_UPSERT = ("INSERT INTO settings (key, value, version, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) "
                 "DO UPDATE SET value = excluded.value, version = excluded.version, updated_at = excluded.updated_at")


class SettingsQueries:
    """Mixed into Store (SQLite): read, save and watch the settings document."""

    def settings_version(self) -> int:
        """The settings' version: grows with every save that changed something (0: never saved)."""
        return self.conn().execute("SELECT COALESCE(MAX(version), 0) FROM settings").fetchone()[0]

    def settings_document(self) -> tuple[int, dict]:
        """(version, the saved settings document) read in one statement, so the two agree."""
        return document(self.conn().execute("SELECT key, value, version FROM settings").fetchall())

    def save_settings_document(self, values: dict, *, only_if_never_saved: bool = False) -> int | None:
        """Replace the document with `values` (only the keys that changed are written); the new version.

        only_if_never_saved: write only into a database that never held settings (the one-time import of a
        settings.json); None when it already did.
        """
        with self.write() as c:
            rows = c.execute("SELECT key, value, version FROM settings").fetchall()
            if only_if_never_saved and rows:
                return None
            version, old = document(rows)
            changed = changes(old, values)
            if changed:
                version += 1
                now = time.time()
                c.executemany(SQLITE_UPSERT, [(k, None if v is REMOVED else json.dumps(v, ensure_ascii=False),
                                               version, now) for k, v in changed.items()])
            return version

    def on_settings(self, callback) -> bool:
        """SQLite has no notifications: False, the watcher polls `settings_version`."""
        return False
