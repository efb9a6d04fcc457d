"""Oracle MySQL and a current WordPress from Debian ``sid``, built once and cached.

Debian's stable suite carries MariaDB only; ``sid`` carries ``mysql-server-core``
(Oracle MySQL 9.x) and ``wordpress`` 7.x. This module owns the tree that holds
them: a minimal sid system built with debootstrap (as root) from the Debian
mirror this machine's apt already uses, MySQL installed in it with apt, and
WordPress's files unpacked into it (no PHP: the host's PHP runs them). The tests
(``tests/support/infra.py``) and ``scripts/bootstrap`` use it; the streamer
never does.

The tree's programs run on the host with the tree's own dynamic loader and
libraries (:meth:`SidTree.command`), not in a chroot: a server's data directory
can then live anywhere (a test's temporary directory) and running needs no root;
only building does.

The cache is ``/var/cache/wpcdc`` (``WPCDC_CACHE_DIR`` overrides it), one
directory per recipe (``sid-<key>``, the key a hash of the packages and steps
below): changing the recipe builds a new tree. A tree is built in a temporary
directory and renamed into place once complete, with a stamp file written last,
so a build that died half-way (a crash, a full disk) leaves nothing that looks
finished and is simply built again. A lock file serialises builders (two test
runs, ``scripts/bootstrap``). ``python -m wpcdc.local.sidtree`` builds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from wpcdc.core.errors import LocalStackError

SUITE = "sid"
MYSQL_PACKAGES = ("mysql-server-core",)
# WordPress and the packages its symlinks point into (PHPMailer, getID3, the JS
# libraries), unpacked without their PHP and web-server dependencies.
WORDPRESS_PACKAGES = (
    "wordpress",
    "libphp-phpmailer",
    "php-getid3",
    "libjs-cropper",
    "libjs-jquery-ui",
    "libjs-lodash",
    "libjs-underscore",
)
# Bump when the steps change in a way the package lists do not show.
RECIPE_VERSION = 1
CACHE_VAR = "WPCDC_CACHE_DIR"
DEFAULT_CACHE = Path("/var/cache/wpcdc")
STAMP = ".wpcdc-sid-tree.json"
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
BUILD_HINT = "run scripts/bootstrap as root (it installs debootstrap and builds the tree)"
# apt inside the tree: sid's Release files may look expired to this machine's
# clock, and the download sandbox user cannot write where root unpacks.
APT_CONF = 'Acquire::Check-Valid-Until "false";\nAPT::Sandbox::User "root";\n'


def recipe_key() -> str:
    recipe = json.dumps([RECIPE_VERSION, SUITE, MYSQL_PACKAGES, WORDPRESS_PACKAGES])
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_VAR) or DEFAULT_CACHE)


@dataclass(frozen=True)
class SidTree:
    """A finished tree: where it is and what it holds."""

    root: Path
    mysql_version: str
    wordpress_version: str

    @property
    def wordpress_root(self) -> Path:
        return self.root / "usr/share/wordpress"

    @property
    def mysql_basedir(self) -> Path:
        return self.root / "usr"

    def command(self, program: str, *args: str) -> list[str]:
        """The argv that runs the tree's ``program`` (an absolute path inside the tree)
        with the tree's loader and libraries."""
        return [
            str(self._loader()),
            "--library-path",
            ":".join(str(p) for p in self._library_dirs()),
            str(self.root / program.lstrip("/")),
            *args,
        ]

    def _loader(self) -> Path:
        found = sorted(self.root.glob("usr/lib*/ld-linux*.so.*")) or sorted(
            self.root.glob("usr/lib/*-linux-gnu/ld-linux*.so.*")
        )
        if not found:
            raise LocalStackError(f"no dynamic loader in {self.root}: the tree is damaged")
        return found[0]

    def _library_dirs(self) -> list[Path]:
        return sorted(p for p in self.root.glob("usr/lib/*-linux-gnu") if p.is_dir())


def find_tree() -> SidTree | None:
    """The finished tree for this recipe, or None."""
    return _read_stamp(cache_dir() / f"sid-{recipe_key()}")


def ensure_tree(*, progress: bool = False) -> SidTree:
    """The finished tree, built first when there is none (needs root, debootstrap and
    a Debian mirror in apt's sources; about a minute and 800 MB). Raises
    LocalStackError naming what is missing."""
    tree = find_tree()
    if tree is not None:
        return tree
    cache = cache_dir()
    final = cache / f"sid-{recipe_key()}"
    if os.geteuid() != 0:
        raise LocalStackError(
            f"no Oracle MySQL tree in {final}, and building one needs root: {BUILD_HINT}"
        )
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise LocalStackError(
            "debootstrap not found (it builds the Debian sid tree that carries Oracle MySQL): "
            f"apt-get install -y debootstrap, or {BUILD_HINT}"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "sid.lock"):
        tree = _read_stamp(final)  # another builder may have finished meanwhile
        if tree is None:
            tree = _build(final, progress=progress)
    return tree


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_stamp(root: Path) -> SidTree | None:
    try:
        stamp = json.loads((root / STAMP).read_text())
        return SidTree(root, str(stamp["mysql_version"]), str(stamp["wordpress_version"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def debian_mirror(sources: Sequence[Path] = SOURCES) -> str:
    """The first Debian mirror in apt's sources that is not the security archive."""
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        if path.suffix == ".sources":  # deb822: URIs and Suites lines per stanza
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, list[str]] = dict(
                    (str(m.group(1)).lower(), str(m.group(2)).split())
                    for m in re.finditer(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE)
                )
                suites = fields.get("suites", [])
                if "deb" in fields.get("types", []) and not any("security" in s for s in suites):
                    for uri in fields.get("uris", []):
                        return uri
        else:
            for line in text.splitlines():
                words = line.split()
                if len(words) >= 3 and words[0] == "deb" and "security" not in line:
                    return next(w for w in words[1:] if not w.startswith("["))
    raise LocalStackError(
        "no Debian mirror found in "
        + " or ".join(str(p) for p in sources)
        + ": the Oracle MySQL tree is built from the mirror apt already uses"
    )


def _build(final: Path, *, progress: bool) -> SidTree:
    staging = final.with_name(final.name + ".partial")
    log = final.with_name(final.name + ".log")
    for leftover in (staging, final):  # a build that died half-way
        if leftover.exists():
            shutil.rmtree(leftover)
    mirror = debian_mirror()
    began = time.monotonic()

    def step(what: str, argv: list[str]) -> None:
        if progress:
            print(f"sidtree: {what}", file=sys.stderr, flush=True)
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(argv)}\n".encode())
            out.flush()
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise LocalStackError(
                f"building the Oracle MySQL tree failed at {what} (exit {result.returncode}; "
                f"log {log}):\n{tail}"
            )

    log.write_text(f"building {final} from {mirror}\n")
    step(f"debootstrap {SUITE} from {mirror}", _debootstrap(staging, mirror))
    (staging / "etc/apt/apt.conf.d/99wpcdc").write_text(APT_CONF)
    chroot = ["chroot", str(staging)]
    step("apt-get update", [*chroot, "apt-get", "update", "-q"])
    step(
        "install " + " ".join(MYSQL_PACKAGES),
        [*chroot, "apt-get", "install", "-y", "-q", "--no-install-recommends", *MYSQL_PACKAGES],
    )
    debs = staging / "var/cache/wpcdc-debs"
    debs.mkdir(parents=True)
    step(
        "download " + " ".join(WORDPRESS_PACKAGES),
        [
            *chroot,
            "sh",
            "-c",
            f'cd /{debs.relative_to(staging)} && apt-get download -q "$@"',
            "sh",
            *WORDPRESS_PACKAGES,
        ],
    )
    for deb in sorted(debs.glob("*.deb")):
        step(f"unpack {deb.name}", ["dpkg-deb", "-x", str(deb), str(staging)])
    shutil.rmtree(debs)
    step("apt-get clean", [*chroot, "apt-get", "clean"])

    tree = SidTree(staging, "", "")
    versions = {
        "mysql_version": _mysql_version(tree, log),
        "wordpress_version": wordpress_version(tree.wordpress_root),
    }
    _check_wordpress_links(tree.wordpress_root)
    stamp = {**versions, "recipe": recipe_key(), "mirror": mirror, "built_at": int(time.time())}
    staging.rename(final)
    (final / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
    if progress:
        print(
            f"sidtree: built {final} in {time.monotonic() - began:.0f}s "
            f"(MySQL {versions['mysql_version']}, WordPress {versions['wordpress_version']})",
            file=sys.stderr,
        )
    found = _read_stamp(final)
    assert found is not None
    return found


def _debootstrap(target: Path, mirror: str) -> list[str]:
    return ["debootstrap", "--variant=minbase", SUITE, str(target), mirror]


def _mysql_version(tree: SidTree, log: Path) -> str:
    result = subprocess.run(
        tree.command("/usr/sbin/mysqld", "--version"), capture_output=True, text=True
    )
    match = re.search(r"Ver (\S+)", result.stdout)
    if result.returncode != 0 or not match:
        raise LocalStackError(
            f"the tree's mysqld does not run on this host (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-500:]} (build log {log})"
        )
    return match.group(1)


def wordpress_version(root: Path) -> str:
    """``$wp_version`` of the WordPress files in ``root``."""
    try:
        text = (root / "wp-includes/version.php").read_text()
    except OSError:
        raise LocalStackError(f"WordPress was not unpacked into {root}") from None
    match = re.search(r"\$wp_version\s*=\s*'([^']+)'", text)
    if not match:
        raise LocalStackError(f"no $wp_version in {root}/wp-includes/version.php")
    return match.group(1)


def _check_wordpress_links(root: Path) -> None:
    """Every relative symlink in WordPress's files must land in the tree (absolute ones
    point at the host's /etc: a CA bundle and .htaccess, which no test uses)."""
    dangling = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            link = Path(folder, name)
            if link.is_symlink() and not os.readlink(link).startswith("/") and not link.exists():
                dangling.append(str(link.relative_to(root)))
    if dangling:
        raise LocalStackError(
            "WordPress's files point into packages the recipe does not unpack: "
            + ", ".join(dangling[:5])
            + " (add the package to WORDPRESS_PACKAGES in wpcdc/local/sidtree.py)"
        )


def main() -> int:
    try:
        tree = ensure_tree(progress=True)
    except LocalStackError as exc:
        print(f"sidtree: {exc}", file=sys.stderr)
        return 1
    print(f"{tree.root} (MySQL {tree.mysql_version}, WordPress {tree.wordpress_version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
