"""UDP transport: one datagram per codec packet.

:class:`UdpTransport` is a thin wrapper around a UDP socket with the two things streaming
needs and ``socket`` does not give directly: a receive call with a timeout that returns
``None`` instead of raising (so every receive loop can check a stop flag at least every
``timeout`` seconds), and counters.  Packet contents are opaque here; the codec's
``pacodec.packet.pack_packet``/``unpack_packet`` (FORMAT.md §9) give them their meaning.

Threading: one thread may ``send`` while another ``recv``\\ s (the OS socket is thread-safe for
that); ``close`` may be called from any thread and makes a blocked ``recv`` return within its
timeout.  Never call these from an audio callback.
"""
import errno
import socket

from .counters import Counted

__all__ = ["UdpTransport", "parse_hostport", "MAX_DATAGRAM"]

MAX_DATAGRAM = 65507


def parse_hostport(text, default_host="127.0.0.1"):
    """``"HOST:PORT"``, ``"[v6]:PORT"``, ``":PORT"`` or ``"PORT"`` -> ``(host, port)``."""
    text = str(text).strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"bad address {text!r}: expected [HOST]:PORT")
    elif ":" in text:
        host, _, port = text.rpartition(":")
    else:
        host, port = "", text
    host = host or default_host
    try:
        port = int(port)
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host, port


class UdpTransport(Counted):
    """A UDP endpoint.

    ``bind=(host, port)`` listens there (port 0 picks a free port: see :attr:`address`);
    ``peer=(host, port)`` is the default destination of :meth:`send`.
    """

    COUNTERS = ("sent", "send_errors", "received", "bytes_sent", "bytes_received")

    def __init__(self, bind=None, peer=None, *, timeout=0.1, rcvbuf=1 << 20):
        host = (bind or peer or ("127.0.0.1", 0))[0]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(rcvbuf))
        except OSError:
            pass
        if bind is not None:
            self._sock.bind(bind)
        self._sock.settimeout(timeout)
        self.peer = peer
        self.timeout = timeout
        self.zero_counters()
        self.last_sender = None
        self._closed = False
        self._address = self._sock.getsockname()[:2]

    @property
    def address(self):
        """The local ``(host, port)`` actually bound (still known after :meth:`close`)."""
        if not self._closed:
            try:
                self._address = self._sock.getsockname()[:2]
            except OSError:
                pass
        return getattr(self, "_address", None) or ("", 0)

    def send(self, data, peer=None):
        """Send one datagram; return True if the OS took it (errors are counted, not raised)."""
        dest = peer or self.peer
        if dest is None:
            raise ValueError("no destination: give peer= to the constructor or to send()")
        try:
            self._sock.sendto(data, dest)
        except OSError as exc:
            # ECONNREFUSED shows up on Linux after an ICMP port-unreachable: the receiver is
            # not (yet) listening.  Streaming just carries on.
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOBUFS, errno.EAGAIN,
                                 errno.EHOSTUNREACH, errno.ENETUNREACH):
                if self._closed:
                    return False
                raise
            self.send_errors += 1
            return False
        self.sent += 1
        self.bytes_sent += len(data)
        return True

    def recv(self, timeout=None):
        """Return one datagram's bytes, or ``None`` after ``timeout`` seconds (or when closed)."""
        return self.recv_from(timeout)[0]

    def recv_from(self, timeout=None):
        """``(bytes, (host, port))`` of one datagram, or ``(None, None)`` after ``timeout``
        seconds (or when closed)."""
        if self._closed:
            return None, None
        try:
            if timeout is not None:
                self._sock.settimeout(timeout)
            data, addr = self._sock.recvfrom(MAX_DATAGRAM)
        except (socket.timeout, BlockingIOError):
            return None, None
        except OSError:
            # closed under us, or a stale ICMP error from an earlier send: not fatal
            return None, None
        self.received += 1
        self.bytes_received += len(data)
        self.last_sender = addr
        return data, addr[:2]

    def close(self):
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
