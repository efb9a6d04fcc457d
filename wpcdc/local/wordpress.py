"""A real WordPress (Debian's ``wordpress`` package) writing to a database of our choosing.

The demo and the tests drive WordPress through its own PHP APIs
(``wp_insert_post``, ``wp_set_post_tags``, ``update_post_meta``, ...) so that the
rows in the binlog are exactly the rows WordPress writes. Each call boots
WordPress in a ``php`` process (about 0.2 s); batch many changes into one snippet.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from wpcdc.core.errors import LocalStackError

BOOT_SCRIPT = Path(__file__).with_name("wordpress_boot.php")
DEFAULT_ROOT = Path("/usr/share/wordpress")
RESULT_MARKER = "@@wpcdc-result@@"
INSTALL_HINT = "install Debian's WordPress and PHP: apt-get install -y wordpress php-cli php-mysql"


class WordPressError(LocalStackError):
    """A PHP snippet failed; the message carries PHP's own output."""


@dataclass(frozen=True)
class WordPressSite:
    host: str
    port: int
    user: str
    password: str
    database: str
    table_prefix: str = "wp_"
    url: str = "http://wpcdc.test"
    multisite: bool = False
    root: Path = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if shutil.which("php") is None:
            raise LocalStackError(f"php not found: {INSTALL_HINT}")
        if not (self.root / "wp-settings.php").is_file():
            raise LocalStackError(f"WordPress not found in {self.root}: {INSTALL_HINT}")

    def install(self, title: str = "wpcdc") -> None:
        """Create WordPress's tables and its first post, page and admin user."""
        self._run(["--install"], {"title": title})

    def enable_multisite(self) -> WordPressSite:
        """Turn the installed site into a multisite network (sub-directories); returns
        the site to use from then on. Blogs: ``create_blog``."""
        self.php(
            """
            require_once ABSPATH . 'wp-admin/includes/network.php';
            require_once ABSPATH . 'wp-admin/includes/upgrade.php';
            global $wpdb;
            foreach ($wpdb->tables('ms_global') as $table => $prefixed) { $wpdb->$table = $prefixed; }
            install_network();
            $done = populate_network(1, $args['domain'], 'admin@example.com', 'wpcdc', '/', false);
            if (is_wp_error($done)) { throw new Exception($done->get_error_message()); }
            return true;
            """,
            {"domain": self.domain},
        )
        return dataclasses.replace(self, multisite=True)

    def create_blog(self, path: str, title: str) -> int:
        """A new blog of this multisite network at /path/; returns its blog id."""
        if not self.multisite:
            raise WordPressError("create_blog needs a multisite network: enable_multisite() first")
        blog_id = self.php(
            """
            $blog = wpmu_create_blog($args['domain'], $args['path'], $args['title'], 1);
            if (is_wp_error($blog)) { throw new Exception($blog->get_error_message()); }
            return $blog;
            """,
            {"domain": self.domain, "path": f"/{path.strip('/')}/", "title": title},
        )
        return int(blog_id)

    @property
    def domain(self) -> str:
        return urlparse(self.url).hostname or "wpcdc.test"

    def php(self, code: str, args: Any = None, timeout: float = 600.0) -> Any:
        """Run PHP ``code`` inside WordPress; ``$args`` holds ``args``; returns what it returns.

        >>> site.php("return wp_insert_post($args, true);", {"post_title": "Hi"})
        """
        with tempfile.NamedTemporaryFile("w", suffix=".php", prefix="wpcdc-snippet-") as snippet:
            snippet.write("<?php\n" + code + "\n")
            snippet.flush()
            return self._run([snippet.name], args, timeout)

    def _run(self, argv: list[str], args: Any, timeout: float = 600.0) -> Any:
        env = {
            **os.environ,
            "WPCDC_WP_DB_HOST": self.host,
            "WPCDC_WP_DB_PORT": str(self.port),
            "WPCDC_WP_DB_USER": self.user,
            "WPCDC_WP_DB_PASSWORD": self.password,
            "WPCDC_WP_DB_NAME": self.database,
            "WPCDC_WP_TABLE_PREFIX": self.table_prefix,
            "WPCDC_WP_URL": self.url,
            "WPCDC_WP_ROOT": str(self.root),
            "WPCDC_WP_MULTISITE": "1" if self.multisite else "0",
        }
        stdin = json.dumps(args) if args is not None else ""
        try:
            result = subprocess.run(
                ["php", "-d", "memory_limit=1G", str(BOOT_SCRIPT), *argv],
                input=stdin.encode(),
                capture_output=True,
                env=env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WordPressError(
                f"WordPress PHP call did not finish within {timeout:.0f}s"
            ) from None
        stdout = result.stdout.decode(errors="replace")
        stderr = result.stderr.decode(errors="replace").strip()
        _, marker, payload = stdout.rpartition(RESULT_MARKER)
        if result.returncode != 0 or not marker:
            raise WordPressError(
                f"WordPress PHP call failed (exit {result.returncode}):\n"
                f"{stderr}\n{stdout[-2000:]}".strip()
            )
        return json.loads(payload)
