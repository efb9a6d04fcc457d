"""Finding the Debian mirror and a finished tree: the parts of the sid tree that need
no root (building it is exercised by scripts/bootstrap and every MySQL test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wpcdc.core.errors import LocalStackError
from wpcdc.local import sidtree

DEB822 = """\
Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def test_the_mirror_comes_from_the_deb822_sources(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(DEB822)
    assert sidtree.debian_mirror([sources]) == "http://mirror.example/debian"


def test_the_mirror_comes_from_a_one_line_sources_list(tmp_path: Path) -> None:
    listing = tmp_path / "sources.list"
    listing.write_text(
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://mirror.example/debian bookworm main\n"
    )
    assert sidtree.debian_mirror([tmp_path / "absent.sources", listing]) == (
        "http://mirror.example/debian"
    )


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalStackError, match="no Debian mirror found in"):
        sidtree.debian_mirror([tmp_path / "absent.sources"])


def test_only_a_stamped_tree_counts_as_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sidtree.CACHE_VAR, str(tmp_path))
    root = tmp_path / f"sid-{sidtree.recipe_key()}"
    root.mkdir()  # what a build that died before its stamp leaves
    assert sidtree.find_tree() is None
    (root / sidtree.STAMP).write_text(
        json.dumps({"mysql_version": "9.7.4-2", "wordpress_version": "7.1.4"})
    )
    tree = sidtree.find_tree()
    assert tree is not None and tree.root == root and tree.wordpress_version == "7.1.4"
    assert tree.wordpress_root == root / "usr/share/wordpress"


def test_the_recipe_key_changes_with_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    key = sidtree.recipe_key()
    monkeypatch.setattr(sidtree, "MYSQL_PACKAGES", ("mysql-server-core", "mysql-client-core"))
    assert sidtree.recipe_key() != key
