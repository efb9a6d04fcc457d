"""JSON Schemas of the event catalog, generated from the payload dataclasses.

``python -m wpcdc.commands.schemas`` rewrites ``schemas/`` (one file per event type and
version, plus ``topic.json``, which accepts any of them); ``--check`` exits 1
when the files differ from the models. A unit test runs the check, and the
integration tests validate every event they receive against these files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter

from wpcdc.core import envelope
from wpcdc.core.entity_payloads import (
    AUTHOR_EVENT,
    MENU_EVENT,
    TERM_EVENT_TYPES,
    AuthorData,
    MenuData,
    TermData,
)
from wpcdc.core.events import (
    EVENT_TYPES,
    META_EVENT,
    POST_EVENT_TYPES,
    SCHEMA_VERSION,
    SITE_EVENT,
    SNAPSHOT_EVENT,
    MetaData,
    PostData,
    SiteData,
    SnapshotData,
    TaxonomyData,
)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"


_REQUIRED = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "schemaversion",
    "binlogfile",
    "binlogpos",
    "sequence",
    "data",
]


def _data_class(event_type: str) -> type[Any]:
    if event_type in POST_EVENT_TYPES:
        return PostData
    if event_type == SNAPSHOT_EVENT:
        return SnapshotData
    if event_type == SITE_EVENT:
        return SiteData
    if event_type in TERM_EVENT_TYPES:
        return TermData
    if event_type == AUTHOR_EVENT:
        return AuthorData
    if event_type == MENU_EVENT:
        return MenuData
    return MetaData if event_type == META_EVENT else TaxonomyData


def schema(event_type: str) -> dict[str, Any]:
    """The schema of a whole record value (envelope and data) of ``event_type``."""
    data = TypeAdapter(_data_class(event_type)).json_schema(ref_template="#/$defs/{model}")
    defs = data.pop("$defs", {})
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": envelope.dataschema(event_type, SCHEMA_VERSION),
        "title": f"{event_type} v{SCHEMA_VERSION}",
        "type": "object",
        "additionalProperties": False,
        "required": [*_REQUIRED],
        "properties": {
            "specversion": {"const": envelope.SPEC_VERSION},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": event_type},
            "subject": {"type": "string", "pattern": _subject_pattern(event_type)},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": envelope.CONTENT_TYPE},
            "dataschema": {"const": envelope.dataschema(event_type, SCHEMA_VERSION)},
            "schemaversion": {"const": SCHEMA_VERSION},
            "binlogfile": {"type": "string", "minLength": 1},
            "binlogpos": {"type": "integer", "minimum": 4},
            "binloggtid": {"type": "string", "minLength": 1},
            "sequence": {"type": "string", "pattern": r"^[0-9]{10}-[0-9]{10}-[0-9]{10}-[0-9]{3}$"},
            "data": data,
        },
        "$defs": defs,
    }


def _subject_pattern(event_type: str) -> str:
    if event_type == SITE_EVENT:
        return r"^(blog/[0-9]+/)?site$"
    if event_type in TERM_EVENT_TYPES:
        return r"^(blog/[0-9]+/)?term/[0-9]+$"
    if event_type == AUTHOR_EVENT:
        return r"^author/[0-9]+$"  # the network's: no blog
    if event_type == MENU_EVENT:
        return r"^(blog/[0-9]+/)?menu/[0-9]+$"
    return r"^(blog/[0-9]+/)?post/[0-9]+$"


def file_name(event_type: str) -> str:
    return f"{event_type}.v{SCHEMA_VERSION}.json"


def render(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def expected_files() -> dict[str, bytes]:
    files = {file_name(t): render(schema(t)) for t in EVENT_TYPES}
    # One schema for the topic as a whole: any event of the catalog.
    files["topic.json"] = render(
        {
            "$schema": SCHEMA_DIALECT,
            "$id": "urn:wpcdc:schema:topic",
            "title": "any wpcdc event",
            "oneOf": [{"$ref": f"./{file_name(t)}"} for t in EVENT_TYPES],
        }
    )
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv
    directory = DEFAULT_DIR
    stale = []
    for name, content in expected_files().items():
        path = directory / name
        current = path.read_bytes() if path.exists() else None
        if current != content:
            stale.append(name)
            if not check:
                path.write_bytes(content)
    if check and stale:
        print(
            f"schemas out of date: {', '.join(stale)}; run: python -m wpcdc.commands.schemas",
            file=sys.stderr,
        )
        return 1
    print(
        ("checked" if check else "wrote") + f" {len(expected_files())} schema files in {directory}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
