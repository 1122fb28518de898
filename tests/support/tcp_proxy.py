"""A TCP proxy on loopback that a test can cut and restore: a server that becomes unreachable and comes back.

    with TcpProxy("127.0.0.1", 5432) as proxy:   # listens on 127.0.0.1:proxy.port
        url = make_url(database_url).set(port=proxy.port)
        ...
        proxy.cut()       # new connections are refused, open ones are reset (as when the server goes away)
        proxy.restore()   # listens again on the same port

Only loopback addresses are accepted for both ends.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading


def _loopback(host: str) -> str:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the proxy only connects loopback addresses, not {host}")
    return host


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1"):
        self.target = (_loopback(target_host), target_port)
        self.listen_host = _loopback(listen_host)
        self.port = 0
        self.connections_cut = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._closed = False

    # --- control -------------------------------------------------------------------------------------

    def start(self) -> "TcpProxy":
        self._listen()
        return self

    def cut(self) -> None:
        """Stop listening (connections are refused) and reset every open connection."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets, self._sockets = self._sockets, set()
            self.connections_cut += len(open_sockets) // 2
        if listener is not None:
            _close(listener)
        for sock in open_sockets:
            _reset(sock)

    def restore(self) -> None:
        self._listen()

    def close(self) -> None:
        self._closed = True
        self.cut()

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.listen_host, self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy-accept", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut or closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    for sock in (client, upstream):
                        _reset(sock)
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._sockets.discard(source)
            self._sockets.discard(sink)
        _close(source)
        _close(sink)


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a peer that vanished (SO_LINGER 0). SHUT_RD wakes a thread blocked in recv on
    it without sending anything; close then sends the RST."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
