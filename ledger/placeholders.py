"""Example secrets a configuration may not keep: the docs' ``...``, ``change-me`` and the like.

A deployment set up from the examples must not run on the examples' passwords. The gateway,
the edge agent, the simulator and the commands that take a PostgreSQL URL ask
:func:`is_placeholder` of every secret they are given and refuse to start on one, naming the
setting; one rule, so a value the gateway refuses is refused by the agent too.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

PLACEHOLDER_SECRETS: Final = frozenset(
    {"password", "passwd", "secret", "example", "xxx", "todo", "tbd", "none", "null"}
)
"""Whole values (compared without case or surrounding blanks) that only an example holds."""


def is_placeholder(secret: str) -> bool:
    """Whether ``secret`` is an example value: blank, only dots (the docs' ``...``), one of
    :data:`PLACEHOLDER_SECRETS`, a ``change-me`` / ``changeit`` variant or an ``<angle
    bracketed>`` stand-in (``<password>``, ``<the line broker-credentials wrote>``)."""
    text = secret.strip().lower()
    return (
        not text.strip(".")
        or text in PLACEHOLDER_SECRETS
        or text.startswith("change")
        or (text.startswith("<") and text.endswith(">"))
    )


def has_placeholder_password(url: str) -> bool:
    """Whether ``url`` (``postgresql://user:password@host/db``) carries an example password."""
    password = urlsplit(url).password
    return password is not None and is_placeholder(password)
