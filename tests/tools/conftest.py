"""Fixtures shared by the file-search tests."""

from __future__ import annotations

import sqlite3

import pytest

from assistants.store import open_store
from assistants.tools.file_search.index import SCHEMA
from tests.conftest import make_settings


@pytest.fixture
def conn():
    """A fresh in-memory database with the file-search schema."""
    connection = sqlite3.connect(":memory:")
    for statement in SCHEMA:
        connection.execute(statement)
    yield connection
    connection.close()


@pytest.fixture
def store(tmp_path):
    """A store on the test's database (SQLite or PostgreSQL): the file-search index through the store interface."""
    opened = open_store(make_settings(tmp_path))
    yield opened
    opened.close()
