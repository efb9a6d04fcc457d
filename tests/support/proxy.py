"""A TCP proxy the tests can cut, to take a broker "down" without losing its data.

The Tansu broker keeps messages in memory only, so restarting it would lose the
topic. Instead the broker advertises the proxy's port, every client connection
goes through the proxy, and ``cut()`` closes them all and refuses new ones
until ``restore()``: from the client's side, exactly a broker outage.
``freeze()`` is a network partition instead: bytes stop flowing both ways and
neither side sees the other close (nothing is closed).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

from wpcdc.local.broker import TansuBroker
from wpcdc.local.ports import free_port


class CuttableProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self._host = host
        self._listen_port = listen_port
        self._target = (host, target_port)
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._frozen = threading.Event()

    @property
    def port(self) -> int:
        """Where clients connect."""
        return self._listen_port

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._listen_port))
        listener.listen(64)
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def cut(self) -> None:
        """Close every connection and stop listening (connections are refused)."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        self.start()

    def freeze(self) -> None:
        """A partition: from now on every byte is dropped and no close is passed on."""
        self._frozen.set()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update({client, upstream})
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self._frozen.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        if self._frozen.is_set():
            return  # partitioned: the other side must not see this one close
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._sockets.discard(source)
            self._sockets.discard(sink)
        # Each socket is the source of exactly one pipe: that pipe closes it.
        source.close()


@contextlib.contextmanager
def broker_behind_proxy(directory: Path) -> Iterator[tuple[CuttableProxy, str]]:
    """A private broker that clients reach only through a :class:`CuttableProxy`;
    yields the proxy and the bootstrap address to give them. Both end on exit."""
    proxy_port, broker_port = free_port(), free_port()
    broker = TansuBroker.start(directory, port=broker_port, advertised_port=proxy_port)
    proxy = CuttableProxy(proxy_port, broker_port)
    proxy.start()
    try:
        yield proxy, f"127.0.0.1:{proxy_port}"
    finally:
        proxy.cut()
        broker.stop()
