"""File Search: text extraction, token chunking and the SQLite FTS5 + embeddings search index."""

from assistants.tools.file_search.chunk import (
    chunk_text,
    count_tokens,
    validate_chunking,
)
from assistants.tools.file_search.index import (
    SCHEMA,
    SearchResult,
    delete_chunks,
    query_terms,
    index_chunks,
    search,
    search_text,
    upgrade_schema,
    usage_bytes,
)
from assistants.tools.file_search.parse import PARSE_TIMEOUT_S, ParseError, extract_text

__all__ = [
    "PARSE_TIMEOUT_S",
    "SCHEMA",
    "ParseError",
    "SearchResult",
    "chunk_text",
    "count_tokens",
    "delete_chunks",
    "extract_text",
    "index_chunks",
    "query_terms",
    "search",
    "search_text",
    "upgrade_schema",
    "usage_bytes",
    "validate_chunking",
]
