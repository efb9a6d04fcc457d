"""Golden scenarios: one WordPress operation per file in golden/, the events it must become.

Each file: ``setup`` (PHP run before wpcdc starts; its return value is ``$args``
for the action), ``action`` (PHP run while `wpcdc run` streams), and ``expect``,
the exact list of event types for the post, in order, with key fields.
Field paths are dotted; ``a[].b`` projects a list (compared sorted); ``a[0].b``
indexes; the string ``"<null>"`` stands for null. ``contains`` lists values a
list must include. ``multisite = true`` turns the site into a network with a
blog 2 first; ``blog`` names the blog the post is on; ``post`` names the key of
the setup result that holds the post id. The post id is what ``setup``
returned, or what ``action`` returned when there is no setup.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import WordPressStack
from tests.support.streaming import events_of

# Every scenario on both server flavors and both WordPress releases: what WordPress
# writes differs between releases, what the server logs between flavors.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.flavors("mariadb", "mysql"),
    pytest.mark.wordpress_releases("6.1", "7"),
]

GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = sorted(GOLDEN.glob("*.toml"))
NULL = "<null>"


def lookup(value: Any, path: str) -> Any:
    """Follow a dotted path; ``name[]`` maps the rest over a list, ``name[3]`` indexes."""
    head, _, rest = path.partition(".")
    match = re.fullmatch(r"(\w+)(?:\[(\d*)\])?", head)
    assert match, f"bad path segment {head!r}"
    name, index = match.group(1), match.group(2)
    value = value[name]
    if index == "":
        items = [lookup(item, rest) if rest else item for item in value]
        return sorted(items, key=repr)
    if index is not None:
        value = value[int(index)]
    return lookup(value, rest) if rest else value


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_golden_scenario(scenario: Path, wp_stack: WordPressStack) -> None:
    spec = tomllib.loads(scenario.read_text())
    site = wp_stack.wordpress
    if spec.get("multisite"):
        site = wp_stack.wordpress.enable_multisite()
        assert site.create_blog("two", "Blog two") == 2
    setup = site.php(spec["setup"]) if "setup" in spec else None

    wp_stack.streamer.start()
    result = site.php(spec["action"], setup)
    wp_stack.wait_caught_up()

    # The post is what setup returned (or its `post` key), else what the action returned.
    post_id = setup if "setup" in spec else result
    if "post" in spec:
        post_id = setup[spec["post"]]
    assert isinstance(post_id, int), f"no post id from setup {setup!r} or action {result!r}"
    blog = spec.get("blog", 1)
    subject = f"post/{post_id}" if blog == 1 else f"blog/{blog}/post/{post_id}"
    records = wp_stack.read_topic()
    events = events_of(records, subject)

    expected = spec["expect"]
    assert [e["type"] for e in events] == [x["type"] for x in expected], (
        f"{scenario.name}: {spec['description']}\n"
        + "\n".join(f"  {e['type']}: {e['data']}" for e in events)
    )
    for event, want in zip(events, expected, strict=True):
        for path, value in want.get("fields", {}).items():
            got = lookup(event, path)
            if value == NULL:
                value = None
            elif "[]" in path:
                value = sorted(value, key=repr)
            assert got == value, f"{scenario.name}: {event['type']} {path}"
        for path, values in want.get("contains", {}).items():
            got = lookup(event, path)
            assert set(values) <= set(got), f"{scenario.name}: {event['type']} {path} = {got}"
        assert event["subject"] == subject
    keys = {r.key for r in records if r.event["subject"] == subject}
    assert keys == {f"{blog}:{post_id}".encode()}
    assert wp_stack.streamer.stop() == 0
