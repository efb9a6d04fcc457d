"""What a binlog query event's SQL text means: transaction bounds and the tables it names.

This module owns the light reading of statements that the binlog source needs:
whether a query event opens, ends or belongs to a transaction
(:func:`statement_kind`, :func:`opens_transaction`), and which watched tables a
DML or DDL statement names (:func:`named_tables`). It is no SQL parser: it errs
on the side of naming too many tables. Pure: no I/O.
"""

from __future__ import annotations

import re

from wpcdc.core.rows import classify_table

_LEADING_COMMENTS = re.compile(r"^(?:\s+|/\*.*?\*/|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$))*", re.S)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\"", re.S)
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_QUALIFIED = re.compile(rf"(?:({_IDENT})\s*\.\s*)?({_IDENT})")
DML_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD"})
DDL_VERBS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})


def statement_kind(query: str) -> str:
    """What a query event means for transaction boundaries.

    ``begin`` opens a transaction, ``commit`` ends one (COMMIT, or ROLLBACK when
    non-transactional changes were logged anyway), ``inner`` is bookkeeping inside
    one (SAVEPOINT, XA END, ...), ``statement`` is anything else: part of the open
    transaction, or a transaction of its own (DDL) when none is open.
    """
    text = _LEADING_COMMENTS.sub("", query, count=1)
    head = text[:40].upper().split()
    if not head:
        return "inner"
    verb = head[0].rstrip(";")
    if verb == "BEGIN" or head[:2] == ["START", "TRANSACTION"] or head[:2] == ["XA", "START"]:
        return "begin"
    if verb == "COMMIT" or (verb == "ROLLBACK" and head[1:2] != ["TO"]):
        return "commit"
    if verb in {"SAVEPOINT", "RELEASE", "ROLLBACK"} or head[:2] == ["XA", "END"]:
        return "inner"
    return "statement"


def opens_transaction(query: str) -> bool:
    """MySQL 8.0.21+ logs CREATE TABLE ... SELECT as one transaction whose DDL
    ends in START TRANSACTION; its rows and an XID follow."""
    return query.rstrip().rstrip(";").upper().endswith("START TRANSACTION")


def _unquote(identifier: str) -> str:
    if identifier.startswith("`"):
        return identifier[1:-1].replace("``", "`")
    return identifier


def named_tables(
    query: str, *, default_schema: str, database: str, prefix: str
) -> tuple[str, list[str]]:
    """The statement's verb and the watched tables of ``database`` it names.

    Conservative on purpose: it also counts a watched name used as a column
    qualifier, and ignores names inside string literals.
    """
    text = _LEADING_COMMENTS.sub("", query, count=1)
    verb = (text[:12].split() or [""])[0].upper()
    if verb not in DML_VERBS and verb not in DDL_VERBS:
        return verb, []
    body = _STRING_LITERAL.sub("''", text)
    found: list[str] = []
    for match in _QUALIFIED.finditer(body):
        qualifier = _unquote(match.group(1)) if match.group(1) else None
        name = _unquote(match.group(2))
        in_database = qualifier == database or (qualifier is None and default_schema == database)
        if in_database and classify_table(prefix, name) is not None:
            found.append(name)
        elif (
            qualifier is not None
            and default_schema == database
            and classify_table(prefix, qualifier) is not None
        ):
            found.append(qualifier)  # wp_posts.ID: a column of a watched table
    return verb, sorted(set(found))
