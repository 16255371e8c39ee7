"""Fixtures shared by the file-search tests."""

from __future__ import annotations

import sqlite3

import pytest

from assistants.tools.file_search.index import SCHEMA


@pytest.fixture
def conn():
    """A fresh in-memory database with the file-search schema."""
    connection = sqlite3.connect(":memory:")
    for statement in SCHEMA:
        connection.execute(statement)
    yield connection
    connection.close()
