"""Assistants API v2 runtime: store, run engine, model providers and tools (no UI imports)."""
