"""The chunk index now lives behind the store (assistants/store/chunk_index.py); these names stay importable."""

from assistants.store.chunk_index import (
    SCHEMA,
    SearchResult,
    delete_chunks,
    index_chunks,
    query_terms,
    renormalize,
    search,
    search_text,
    upgrade_schema,
    usage_bytes,
)

__all__ = ["SCHEMA", "SearchResult", "delete_chunks", "index_chunks", "query_terms", "renormalize", "search",
           "search_text", "upgrade_schema", "usage_bytes"]
