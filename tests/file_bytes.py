"""What holds uploaded files' bytes right now, whichever backend a runtime uses (for tests that check leftovers)."""

from __future__ import annotations

import os


def stored(rt) -> list[str]:
    """Names in the files folder (temp files included), or the file ids that have chunks in PostgreSQL."""
    folder = rt.settings.blob_dir
    if folder is not None:
        return sorted(os.listdir(folder)) if folder.exists() else []
    import psycopg

    with psycopg.connect(rt.settings.database_url) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT file_id FROM file_blobs ORDER BY 1")]
