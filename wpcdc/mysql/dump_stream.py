"""The dump connection's wire: asking for the binlog, and reading its packets.

This module owns the two wire-level halves of the fast reader
(:mod:`wpcdc.mysql.dump` decodes what they carry): :func:`start_dump`, which
asks the server for its binlog the way mysql-replication does, and
:class:`DumpStream`, which reads the stream's packets from the socket without
blocking and without PyMySQL's per-packet objects.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Iterator
from typing import Any

from pymysql.err import OperationalError

from wpcdc.core.positions import Position
from wpcdc.core.rows import Wait

COM_BINLOG_DUMP = 0x12


def start_dump(connection: Any, *, server_id: int, position: Position, heartbeat: float) -> bool:
    """Ask the server for its binlog from ``position`` as replica ``server_id``.

    The same sequence mysql-replication sends (with ``is_mariadb=False``, so file/pos
    works on both flavors and MariaDB still sends its GTID events): CRC32 checksums
    announced when the server writes them, the heartbeat period (nanoseconds), MariaDB
    slave capability 4 (GTID events, not dummies; MySQL ignores the variable), then
    COM_BINLOG_DUMP. Returns whether events end with a 4-byte checksum.
    """
    with connection.cursor() as cursor:
        cursor.execute("SHOW GLOBAL VARIABLES LIKE 'BINLOG_CHECKSUM'")
        row = cursor.fetchone()
        checksum = row is not None and str(row[1]).upper() != "NONE"
        if checksum:
            cursor.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
        cursor.execute("SET @master_heartbeat_period = %s", (int(heartbeat * 1_000_000_000),))
        cursor.execute("SET @mariadb_slave_capability = 4")
    name = position.file.encode()
    # A packet header (3-byte length, sequence 0) then COM_BINLOG_DUMP: position,
    # flags (0: block at the end of the binlog), server id, file name.
    command = (
        struct.pack("<IBIHI", len(name) + 11, COM_BINLOG_DUMP, position.pos, 0, server_id) + name
    )
    connection._write_bytes(command)
    connection._next_seq_id = 1
    return checksum


def lost_connection() -> OperationalError:
    return OperationalError(2013, "Lost connection to MySQL server during query")


# What one read from the socket may take: during a backlog a read takes what the
# kernel holds (hundreds of KB), not PyMySQL's 8 KiB, so there are few system calls.
READ_SIZE = 1 << 20
# A packet header: 3-byte length (little-endian) and a sequence number.
_PACKET_LENGTH = struct.Struct("<I")
_LONG_PACKET = 0xFFFFFF


class DumpStream:
    """The dump connection's bytes, split into packets, read without blocking.

    The socket is made non-blocking: :meth:`packets` hands out what is complete in
    the buffer, and :meth:`more` reads what the kernel holds or, when it holds
    nothing, yields a :class:`~wpcdc.core.rows.Wait` for the caller to wait on
    (a thread blocks in ``poll``, the asyncio loop waits for readability).
    That lets the binlog be read on the loop's thread: two threads passing the
    interpreter lock back and forth after every socket call cost a fifth of a
    bulk job's time (benchmarks/README.md). A read that gets nothing for
    ``timeout`` seconds raises TimeoutError, as the blocking socket did.

    Without a socket (unit tests give a connection with only ``_rfile``), the
    file is read instead, and its end is the connection's.
    """

    def __init__(self, connection: Any, timeout: float | None) -> None:
        sock = getattr(connection, "_sock", None)
        self._sock: socket.socket | None = sock if isinstance(sock, socket.socket) else None
        self._rfile = None if self._sock is not None else connection._rfile
        self._tls = isinstance(sock, ssl.SSLSocket)
        self._timeout = timeout
        self._buffer = b""
        self._at = 0
        self._split: list[bytes] = []
        if self._sock is not None:
            self._sock.setblocking(False)

    def packets(self) -> list[bytes]:
        """The payloads of the packets complete in the buffer (one logical packet
        each: a payload of 16 MiB and more comes in several); empty until one is."""
        buffer, at = self._buffer, self._at
        size = len(buffer)
        unpack = _PACKET_LENGTH.unpack_from
        payloads = []
        while size - at >= 4:
            length = unpack(buffer, at)[0] & 0xFFFFFF
            end = at + 4 + length
            if end > size:
                break
            if length == _LONG_PACKET:
                self._at = at
                payload = self._long_packet()
                if payload is None:
                    break
                payloads.append(payload)
                at = self._at
                continue
            payloads.append(buffer[at + 4 : end])
            at = end
        self._at = at
        # The reader goes through this list as it is: until then its packets are
        # received and not yet read, like the buffer's bytes (white-box tests of a
        # connection reset drop both).
        self._split = payloads
        return payloads

    def _long_packet(self) -> bytes | None:
        buffer, at = self._buffer, self._at
        parts = []
        while True:
            if len(buffer) - at < 4:
                return None
            length = _PACKET_LENGTH.unpack_from(buffer, at)[0] & 0xFFFFFF
            if at + 4 + length > len(buffer):
                return None
            parts.append(buffer[at + 4 : at + 4 + length])
            at += 4 + length
            if length != _LONG_PACKET:
                self._at = at
                return b"".join(parts)

    def more(self) -> Iterator[Wait]:
        """Read more bytes, yielding a Wait whenever none are there yet."""
        deadline: float | None = None
        while not self._fill():
            now = time.monotonic()
            if deadline is None:
                deadline = None if self._timeout is None else now + self._timeout
            elif now >= deadline:
                raise TimeoutError("timed out")
            yield Wait(self._sock, deadline)

    def _fill(self) -> bool:
        """Whatever the connection holds now, appended; False when it holds nothing.
        The end of the stream is a lost connection (the server ends a stream with an
        EOF packet, read before this is called again)."""
        chunks = []
        if self._sock is None:
            assert self._rfile is not None
            chunk = self._rfile.read1(READ_SIZE)
            if not chunk:
                raise lost_connection()
            chunks.append(chunk)
        else:
            got = 0
            # A plain socket gives all it holds at once; TLS a record (16 KiB) at a
            # time, so it is read until it has nothing, or READ_SIZE was read (what
            # TLS decrypted and holds is read first by the next call, never waited on).
            while got < READ_SIZE:
                try:
                    chunk = self._sock.recv(READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    break
                if not chunk:
                    if chunks:
                        break  # the end comes with the next read
                    raise lost_connection()
                chunks.append(chunk)
                got += len(chunk)
                if not self._tls:
                    break
        if not chunks:
            return False
        self._buffer = self._buffer[self._at :] + b"".join(chunks)
        self._at = 0
        return True
