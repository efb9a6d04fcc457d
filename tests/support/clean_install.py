"""A clean, non-editable install of wpcdc: its wheel and its declared dependencies only.

What a user gets from ``pip install wpcdc`` (and the Docker image from its wheel)
is the wheel plus the dependencies its metadata declares, resolved with their
own. This module builds that without the network beyond the wheel build: a
fresh virtual environment (no pip, no site packages), the wheel installed into
it by pip (``--no-deps``: a copy, not a link to the source tree), and each
declared dependency, followed through its own requirements and extras, linked in
from the development environment at the version installed there. Whatever
wpcdc does not declare is absent, so a missing dependency fails as it would for
a user.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    """wpcdc's wheel, built as the Dockerfile builds it: from a copy of pyproject.toml,
    README.md and the package alone (so no stale ``build/`` of the working tree, nor
    any file outside the package, can slip in)."""
    source = out / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    shutil.copytree(
        PROJECT / "wpcdc", source / "wpcdc", ignore=shutil.ignore_patterns("__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("wpcdc-*.whl")
    return wheel


def declared_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of the wheel's metadata (what pip would install)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    return Parser().parsestr(text).get_all("Requires-Dist") or []


def closure(requirements: list[str], *, without: frozenset[str] = frozenset()) -> set[str]:
    """The distributions that installing ``requirements`` brings (names canonicalized),
    found in this environment; ``without`` leaves some out, with what only they need."""
    wanted: dict[str, set[str]] = {}
    todo = [(Requirement(line), frozenset({""})) for line in requirements]
    while todo:
        requirement, parent_extras = todo.pop()
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": e}) for e in parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        if name in without:
            continue
        distribution = metadata.distribution(name)
        if not requirement.specifier.contains(distribution.version, prereleases=True):
            raise AssertionError(f"{name} {distribution.version} does not satisfy {requirement}")
        extras = {""} | set(requirement.extras)
        known = wanted.get(name)
        if known is not None and extras <= known:
            continue
        wanted[name] = (known or set()) | extras
        for line in distribution.requires or []:
            todo.append((Requirement(line), frozenset(wanted[name])))
    return set(wanted)


def fresh_environment(directory: Path, wheel: Path, distributions: set[str]) -> Path:
    """A new virtual environment with the wheel installed and ``distributions`` linked
    in; returns its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(directory)],
        check=True,
        capture_output=True,
    )
    python = directory / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for name in sorted(distributions):
        distribution = metadata.distribution(name)
        base = Path(str(distribution.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in distribution.files or [] if ".." not in str(f)}
        for top in tops:
            target = site / top
            if not target.exists() and (base / top).exists():
                target.symlink_to(base / top)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return python
