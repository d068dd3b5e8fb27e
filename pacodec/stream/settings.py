"""The options of :class:`~.receiver.Receiver` and :class:`~.sender.Sender` as settings objects.

Each is a frozen dataclass checked once, when it is made: a value out of range raises
``ValueError`` (a bad rate option: :class:`~pacodec.errors.UnsupportedError`) with a one-line
message, before any socket, thread or audio device opens.  The pipelines take one as
``settings=`` or the same names as keywords (``Receiver(bind, output="x.wav")`` is
``Receiver(bind, settings=ReceiverSettings(output="x.wav"))``); given both, the keywords
replace those fields of ``settings``.

What is not a setting stays a constructor argument: the address (``bind``, ``destination``),
the audio (``Sender(source=...)``) and the collaborators (``decoder_factory``,
``encoder_factory``, ``transport``).
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from ..packet import PACKET_MAX_FRAMES as MAX_FRAMES
from ..options import resolve

__all__ = ["ReceiverSettings", "SenderSettings", "make_settings"]


def _fix(obj, name, value):
    object.__setattr__(obj, name, value)


def _seconds(obj, name, *, positive=False, optional=False):
    """Check a time in seconds (>= 0, or > 0 with ``positive``; ``None`` with ``optional``)."""
    v = getattr(obj, name)
    if v is None and optional:
        return
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds, got {v!r}") from None
    if isinstance(v, bool) or not math.isfinite(f) or f < 0 or (positive and f == 0):
        raise ValueError(f"{name} must be {'positive' if positive else '>= 0'} seconds, "
                         f"got {v!r}")
    _fix(obj, name, f)


def _count(obj, name, *, optional=False, positive=False):
    """Check a whole number (>= 0, or > 0 with ``positive``; ``None`` with ``optional``)."""
    v = getattr(obj, name)
    if v is None and optional:
        return
    try:
        whole = not isinstance(v, bool) and int(v) == v
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or int(v) < (1 if positive else 0):
        raise ValueError(f"{name} must be an integer {'> 0' if positive else '>= 0'}, "
                         f"got {v!r}")
    _fix(obj, name, int(v))


def _key(obj):
    key = obj.key
    if key is None:
        return
    if not isinstance(key, (bytes, bytearray, memoryview)) or not len(key):
        raise ValueError("key must be bytes (see pacodec.stream.packet.load_key)")
    _fix(obj, "key", bytes(key))


@dataclass(frozen=True)
class ReceiverSettings:
    """What :class:`~.receiver.Receiver` does with a stream (see its docstring)."""
    #: None: play to ``device``; a path: write the decoded audio there (a WAV file)
    output: str | os.PathLike | None = None
    #: the output device (anything sounddevice accepts)
    device: object = None
    #: audio block size (0: what the device prefers)
    blocksize: int = 0
    #: bounds of the jitter buffer's target delay (seconds)
    min_delay: float = 0.0
    max_delay: float = 0.5
    #: added to the measured jitter (seconds)
    margin: float = 0.010
    #: pre-shared key (bytes): only packets carrying its MAC are accepted
    key: bytes | None = field(default=None, repr=False)
    #: replace an existing ``output``
    force: bool = False
    #: how long a session may be quiet before another may take over (seconds)
    silence: float = 2.0
    #: CPython's GIL switch interval while a device plays (None: leave it)
    switch_interval: float | None = 0.001
    #: stop when no packet came for this long, after the first one (None: never)
    idle_timeout: float | None = None
    #: kept in the output ring beyond one frame and one block (seconds)
    ring_margin: float = 0.005

    def __post_init__(self):
        _count(self, "blocksize")
        for name in ("min_delay", "max_delay", "margin", "ring_margin"):
            _seconds(self, name)
        if not self.min_delay <= self.max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        _seconds(self, "silence", positive=True)
        _seconds(self, "switch_interval", positive=True, optional=True)
        _seconds(self, "idle_timeout", positive=True, optional=True)
        _key(self)
        _fix(self, "force", bool(self.force))


@dataclass(frozen=True)
class SenderSettings:
    """How :class:`~.sender.Sender` codes and sends (see its docstring)."""
    #: capture rate (None: 48000, or the source file's rate)
    samplerate: int | None = None
    #: capture channels (None: 2; a source's own count always wins)
    channels: int | None = None
    #: CBR rate in kbit/s for all channels (checked by :func:`pacodec.options.resolve`)
    bitrate: float | None = 128
    low_delay: bool = False
    #: the input device (anything sounddevice accepts)
    device: object = None
    #: audio block size (0: what the device prefers)
    blocksize: int = 0
    #: pre-shared key (bytes): every packet carries its MAC
    key: bytes | None = field(default=None, repr=False)
    #: the stream's session id (None or 0: a random one)
    session: int | None = None
    #: with a source: repeat it
    loop: bool = False
    #: CPython's GIL switch interval while the microphone runs (None: leave it)
    switch_interval: float | None = 0.001
    #: how far the codec may fall behind the microphone before the backlog is dropped (s)
    max_backlog: float = 0.1
    #: consecutive frames per UDP datagram (1..8, FORMAT.md §9)
    frames_per_packet: int = 1

    def __post_init__(self):
        _count(self, "samplerate", optional=True, positive=True)
        _count(self, "channels", optional=True, positive=True)
        _count(self, "blocksize")
        _count(self, "session", optional=True)
        if self.session is not None and self.session >= 1 << 32:
            raise ValueError(f"session must be a 32-bit number, got {self.session!r}")
        _seconds(self, "switch_interval", positive=True, optional=True)
        _seconds(self, "max_backlog")
        _count(self, "frames_per_packet", positive=True)
        if self.frames_per_packet > MAX_FRAMES:
            raise ValueError(f"frames_per_packet must be 1 to {MAX_FRAMES}, "
                             f"got {self.frames_per_packet!r}")
        _key(self)
        _fix(self, "low_delay", bool(self.low_delay))
        _fix(self, "loop", bool(self.loop))
        resolve(bitrate=self.bitrate, low_delay=self.low_delay)


def make_settings(cls, settings, options):
    """``settings`` (an instance of ``cls``, or None: the defaults) with the keyword
    ``options`` replacing its fields; checked once (by ``cls``)."""
    if settings is None:
        return cls(**options)
    if not isinstance(settings, cls):
        raise TypeError(f"settings must be a {cls.__name__}, not {type(settings).__name__}")
    return dataclasses.replace(settings, **options) if options else settings
