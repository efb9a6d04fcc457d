"""The signal table: live re-snapshot requests and the DBLog watermarks around each chunk.

This module owns the ``<prefix>wpcdc_signal`` table on the server: its DDL,
inserting a request (:func:`request_resnapshot`, used by ``wpcdc resnapshot``)
and the streamer's side (:class:`SignalTable`): low watermark, the chunk's
posts, high watermark, and marking a request done. The watermark rows reach the
streamer through the binlog like any other change.
"""

from __future__ import annotations

import contextlib

import pymysql.cursors

from wpcdc.config.settings import MysqlSettings
from wpcdc.core.resnapshot import HIGH, LOW, REQUEST, Chunk, watermark_data
from wpcdc.core.rows import TableKind
from wpcdc.core.snapshot_events import PostBundle
from wpcdc.mysql.connection import MysqlConnection, connect, quote
from wpcdc.mysql.posts import read_post_bundles

SIGNAL_TABLE_DDL = """CREATE TABLE IF NOT EXISTS {table} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind VARCHAR(16) NOT NULL,
  data TEXT NOT NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  done_at DATETIME NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


def signal_table(settings: MysqlSettings) -> str:
    return f"{settings.table_prefix}{TableKind.SIGNAL.value}"


def request_resnapshot(settings: MysqlSettings, request_json: str) -> int:
    """Insert a re-snapshot request (creating the signal table when missing); its id."""
    table = quote(signal_table(settings))
    with contextlib.closing(connect(settings)) as conn, conn.cursor() as cursor:
        cursor.execute(SIGNAL_TABLE_DDL.format(table=table))
        cursor.execute(f"INSERT INTO {table} (kind, data) VALUES (%s, %s)", (REQUEST, request_json))
        return int(cursor.lastrowid)


class SignalTable:
    """The streamer's side of the signal table: watermarks, chunk reads, completion."""

    def __init__(self, settings: MysqlSettings) -> None:
        self._settings = settings
        self._table = quote(signal_table(settings))
        self._conn: MysqlConnection | None = None

    def _cursor(self) -> pymysql.cursors.Cursor:
        if self._conn is None:
            self._conn = connect(self._settings)
        self._conn.ping(reconnect=True)
        return self._conn.cursor()

    def is_done(self, request_id: int) -> bool:
        with self._cursor() as cursor:
            cursor.execute(f"SELECT done_at FROM {self._table} WHERE id = %s", (request_id,))
            row = cursor.fetchone()
        return row is None or row[0] is not None

    def read_window(self, chunk: Chunk, token: str) -> list[PostBundle]:
        """Low watermark, the chunk's posts, high watermark (each committed on its own)."""
        data = watermark_data(token, chunk)
        with self._cursor() as cursor:
            cursor.execute(f"INSERT INTO {self._table} (kind, data) VALUES (%s, %s)", (LOW, data))
        assert self._conn is not None
        request = chunk.request
        if request.ids:
            bundles = read_post_bundles(self._conn, self._settings, request.blog_id, ids=chunk.ids)
        else:
            bundles = read_post_bundles(
                self._conn,
                self._settings,
                request.blog_id,
                after_id=chunk.after_id,
                limit=chunk.limit,
                max_id=request.high,
            )
        with self._cursor() as cursor:
            cursor.execute(f"INSERT INTO {self._table} (kind, data) VALUES (%s, %s)", (HIGH, data))
        return bundles

    def mark_done(self, request_id: int) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"UPDATE {self._table} SET done_at = NOW() WHERE id = %s", (request_id,))
            # The watermark rows have done their work in the binlog.
            cursor.execute(
                f"DELETE FROM {self._table} WHERE kind IN (%s, %s) AND JSON_VALUE(data, '$.request') = %s",
                (LOW, HIGH, request_id),
            )

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
