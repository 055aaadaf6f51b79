"""The store's '?' statements as psycopg takes them (gateway/store/postgresql/session.py)."""

from __future__ import annotations

import pytest

from gateway.store.postgresql.session import translate
from gateway.store.postgresql.store import describe, is_postgres_url


def test_placeholders_become_psycopg_ones() -> None:
    """Each '?' outside a literal is '%s'."""
    assert translate("SELECT a FROM t WHERE b = ? AND c IN (?, ?)") == (
        "SELECT a FROM t WHERE b = %s AND c IN (%s, %s)"
    )


def test_literals_and_percent_signs_are_kept() -> None:
    """A '?' inside quotes stays; every literal '%' is doubled (psycopg's escape)."""
    assert translate("SELECT '?', \"a?\" FROM t WHERE x LIKE 'a%' AND y = ?") == (
        "SELECT '?', \"a?\" FROM t WHERE x LIKE 'a%%' AND y = %s"
    )
    assert translate("SELECT 10 % ?") == "SELECT 10 %% %s"


def test_numbered_placeholders_are_refused() -> None:
    """'?1' would be misread as '%s' followed by 1: refused."""
    with pytest.raises(ValueError, match="numbered placeholders"):
        translate("INSERT INTO t VALUES (?1, ?2)")


def test_url_recognition_and_description() -> None:
    """Both URL schemes are PostgreSQL; a described URL has no password."""
    assert is_postgres_url("postgresql://h/db")
    assert is_postgres_url("postgres://h/db")
    assert not is_postgres_url("sqlite:gateway.db")
    assert describe("postgresql://u:secret@h/db") == "postgresql://u@h/db"
    assert "secret" not in describe("postgresql://u:secret@h:5432/db?sslmode=require")
