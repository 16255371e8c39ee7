"""The Settings page's settings live in the database, so every instance sharing it sees a change.

Servers, the keys bound to their URL, model aliases and the default model: the same document older versions kept
in `<data dir>/settings.json`. Precedence is unchanged (config.load_settings): the environment, then these.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from assistants.config import Settings, load_settings, read_settings_file

log = logging.getLogger(__name__)

POLL_S = 0.5  # SQLite: how often the settings' version is read (MAX over a handful of rows: microseconds)
NOTIFIED_POLL_S = 5.0  # PostgreSQL: a NOTIFY wakes the watch at once; this is only the safety net


def settings_from_database(store, base: Settings) -> tuple[int, Settings]:
    """(version, this process's environment with the settings saved in the database); the store in use stays."""
    version, ui = store.settings_document()
    env = {**os.environ, "PLAYGROUND_DATA_DIR": str(base.data_dir)}
    return version, replace(load_settings(env, ui=ui), database_url=base.database_url)


def import_settings_file(store, path: Path) -> str | None:
    """Once per database: move an older version's settings.json into it. The file is renamed, never deleted.

    Returns (and logs) what was done, None when there was no file. A database that already holds settings (saved
    by another instance) keeps them: the file is then set aside under another name, and the log line says so.
    """
    if not path.is_file():
        return None
    try:
        values = read_settings_file(path)
    except ValueError as exc:
        note = f"Settings: {exc}. It was not imported into the database; the Settings page shows the database's."
        log.warning(note)
        return note
    if store.save_settings_document(values, only_if_never_saved=True) is not None:
        kept = _set_aside(path, ".imported")
        note = (f"Settings: imported {path} into the database (servers, keys, model aliases, default model); "
                f"every instance sharing the database uses them now. The file is kept as {kept or path} and no "
                "longer read.")
    elif store.settings_document()[1] == values:
        kept = _set_aside(path, ".imported")
        note = f"Settings: {path} is already in the database; the file is kept as {kept or path} and no longer read."
    else:
        kept = _set_aside(path, ".not-imported")
        note = (f"Settings: {path} was NOT imported: the database already holds settings (saved by another instance "
                f"or earlier), and they stay. The file is kept as {kept or path}; re-enter on the Settings page "
                "anything of it you want.")
    log.warning(note)
    return note


def _set_aside(path: Path, suffix: str) -> Path | None:
    """Rename the file to a name not taken yet (an older copy is never overwritten); None if it cannot be renamed."""
    target, n = path.with_name(path.name + suffix), 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{suffix}.{n}")
    try:
        path.rename(target)
    except FileNotFoundError:  # another process sharing the data dir imported it at the same moment
        return None
    except OSError as exc:
        log.warning("Settings: could not rename %s (%s); it is no longer read all the same", path, exc)
        return None
    return target


class SettingsWatch:
    """Notices settings saved by any process sharing the database; the sweeper's tick calls `tick`."""

    def __init__(self, store, reload: Callable[[], None]):
        self.store = store
        self.reload = reload
        self.seen = store.settings_version()
        self._woken = threading.Event()
        self._notified = store.on_settings(self._woken.set)
        self._checked = time.monotonic()

    def applied(self, version: int) -> None:
        """The process applied this version itself (it saved): no reload for it."""
        self.seen = max(self.seen, version)

    def tick(self) -> None:
        """Read the version when notified or due; a new one is applied on a thread of its own."""
        if not self._woken.is_set() and time.monotonic() - self._checked < (NOTIFIED_POLL_S if self._notified else POLL_S):
            return
        self._woken.clear()
        self._checked = time.monotonic()
        try:
            version = self.store.settings_version()
        except Exception:  # the database is away for a moment: the next look will tell
            log.debug("could not read the settings' version", exc_info=True)
            return
        if version != self.seen:
            self.seen = version
            # On its own thread: building backends may probe the network, and the sweeper must keep renewing leases.
            threading.Thread(target=self.reload, name="settings-reload", daemon=True).start()
