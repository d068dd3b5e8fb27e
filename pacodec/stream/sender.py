"""``Sender``: microphone (or a file paced in real time) -> Encoder -> UDP packets.

Each codec frame goes out in one datagram made by :func:`.packet.pack` (FORMAT.md §9): a random
``session`` id chosen per stream, ``seq`` counting frames from 0, ``timestamp`` is the frame's first sample
index in samples at the stream rate (``seq * frame_size``, plus any microphone samples dropped
because the codec fell more than ``max_backlog`` seconds behind), and with ``key`` a MAC.  The stream parameters travel
in-band (the encoder repeats its configuration at least once a second), so a receiver can join
at any time and nothing is agreed out of band.

Threads:

* microphone mode: the **audio callback** only copies the input block into a preallocated
  ring and posts a wake-up token; the **codec thread** (``pacodec-send``) encodes whole frames
  from the ring, packs and sends them (a UDP send never blocks for long);
* file mode (``source=`` an array or a path): no audio device at all; the codec thread reads
  the next frame's samples when the wall clock reaches them, encodes and sends;
* the caller's thread: ``start``/``stop``/``stats``/``run``.

``stop()`` flushes the encoder, so the last packets (and the end-of-stream frame) are sent.
"""
import queue
import threading
import time

import numpy as np

from ._audio import AudioPipeline, kbps, sounddevice, ungrouped, warm_codec
from .live import default_encoder_factory
from .packet import new_session_id, pack
from .ringbuffer import RingBuffer
from .settings import SenderSettings, make_settings
from .transport import UdpTransport

__all__ = ["Sender", "load_audio"]


def load_audio(path):
    """(data (n, channels) float32, samplerate) from a .pac file or anything soundfile reads."""
    path = str(path)
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        from .. import container
        magic = getattr(container, "MAGIC", None)
    except Exception:
        magic = None
    if path.endswith(".pac") or (magic is not None and head == bytes(magic)[:4]):
        from .. import api
        data, sr = api.read(path)
    else:
        import soundfile as sf
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    return data, int(sr)


class Sender(AudioPipeline):
    """Encode live or file audio and send it as UDP packets to ``destination=(host, port)``.

    ``source=None`` records from the settings' ``device``; ``source=array`` ((n, channels)
    float) or a path streams that audio in real time (``samplerate`` is then the array's rate,
    or the file's).  The options are a :class:`~.settings.SenderSettings` (``settings=``) or
    its fields as keywords: ``samplerate``, ``channels``, ``bitrate``, ``low_delay``,
    ``device``, ``blocksize``, ``key`` (bytes, see :func:`.packet.load_key`: authenticates
    every packet), ``session``, ``loop``, ``switch_interval``, ``max_backlog``,
    ``frames_per_packet`` (1..8 consecutive frames per datagram, FORMAT.md §9: fewer packets
    for short frames at the cost of holding frames back; the last packet may carry fewer).
    """

    COUNTERS = ("seq", "bytes", "samples_in", "input_overflows", "input_dropped",
                "status_flags", "datagrams")

    # settings the pipeline reads, as views of the one copy in ``self.settings``
    key = property(lambda self: self.settings.key, doc="the stream key, or None (unauthenticated)")
    switch_interval = property(lambda self: self.settings.switch_interval,
                               doc="the interpreter's thread switch interval while running")

    def __init__(self, destination, *, source=None, settings=None, encoder_factory=None,
                 transport=None, **options):
        self.settings = cfg = make_settings(SenderSettings, settings, options)
        self.destination = destination
        samplerate, channels = cfg.samplerate, cfg.channels
        self._source = None
        if source is not None:
            if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
                source, file_rate = load_audio(source)
                samplerate = samplerate or file_rate
            source = np.asarray(source, dtype=np.float32)
            if source.ndim == 1:
                source = source[:, None]
            if samplerate is None:
                raise ValueError("samplerate is required with an array source")
            channels = source.shape[1]
            self._source = source
        self.samplerate = int(samplerate or 48000)
        self._max_backlog = int(cfg.max_backlog * self.samplerate)
        self.channels = int(channels or 2)
        self._make_encoder = encoder_factory or default_encoder_factory(
            self.samplerate, self.channels, bitrate=cfg.bitrate, low_delay=cfg.low_delay)
        self.session = cfg.session or new_session_id()
        self.transport = transport or UdpTransport(peer=destination)
        self._own_transport = transport is None
        self.ring = RingBuffer(max(self.samplerate, 8192), self.channels)
        self._wake = queue.SimpleQueue()
        self._stop = threading.Event()
        self._end_event = threading.Event()
        self._thread = None
        self.encoder = None
        self.zero_counters()            # seq: the next frame's sequence number
        self._pending = []              # frames waiting for their datagram
        self._pending_ts = 0

    # ------------------------------------------------------------------ audio thread
    def _callback(self, indata, frames, time_info, status):
        if status:
            self.status_flags += 1
            if status.input_overflow:
                self.input_overflows += 1
        if self.ring.write(indata) < frames:
            self.input_overflows += 1
        self._wake.put_nowait(None)

    # ------------------------------------------------------------------ codec thread
    def _send(self, packets, last=False):
        """Send the frames ``packets`` (``frames_per_packet`` to a datagram; ``last``: send
        what is left over too)."""
        hop = self.encoder.frame_size
        per = self.settings.frames_per_packet
        pending = self._pending
        for frame in packets:
            if not pending:
                self._pending_ts = self.seq * hop + self.input_dropped
            pending.append(frame)
            if len(pending) >= per:
                self._send_pending()
        if last and pending:
            self._send_pending()

    def _send_pending(self):
        frames = self._pending
        data = pack(self.session, self.seq, self._pending_ts,
                    frames[0] if len(frames) == 1 else frames, self.key)
        self.transport.send(data, self.destination)
        self.seq += len(frames)
        self.bytes += len(data)
        self.datagrams += 1
        frames.clear()

    def _encode(self, pcm):
        t0 = time.perf_counter()
        packets = self.encoder.encode(pcm)
        self.codec_seconds += time.perf_counter() - t0
        self.samples_in += len(pcm)
        self._send(packets)

    def _mic_loop(self):
        hop = self.encoder.frame_size
        frame = np.zeros((hop, self.channels), np.float32)
        while not self._stop.is_set():
            try:
                self._wake.get(timeout=0.1)
            except queue.Empty:
                continue
            while True:
                try:
                    self._wake.get_nowait()
                except queue.Empty:
                    break
            backlog = self.ring.available
            if backlog > max(2 * hop, self._max_backlog):
                # the codec fell behind the microphone (a starved CPU): drop the backlog so
                # that it does not become latency; timestamps keep counting captured samples
                dropped = (backlog // hop - 1) * hop
                self.ring.skip(dropped)
                self.input_dropped += dropped
            while self.ring.available >= hop:
                self.ring.read_into(frame)
                self._encode(frame)

    def _file_loop(self):
        src = self._source
        hop = self.encoder.frame_size
        t0 = time.monotonic()
        pos = 0
        sent = 0
        while not self._stop.is_set():
            if pos >= len(src):
                if not self.settings.loop:
                    break
                pos = 0
            due = t0 + (sent + hop) / self.samplerate   # a frame is "captured" at its end
            wait = due - time.monotonic()
            if wait > 0:
                self._stop.wait(min(wait, 0.1))
                continue
            chunk = src[pos:pos + hop]
            pos += len(chunk)
            sent += len(chunk)
            self._encode(chunk)

    def _run(self, body):
        try:
            body()
            t0 = time.perf_counter()
            packets = self.encoder.flush()
            self.codec_seconds += time.perf_counter() - t0
            self._send(packets, last=True)
        except BaseException as exc:
            self.error = exc
        finally:
            self._end_event.set()

    # ------------------------------------------------------------------ control
    def start(self):
        warm_codec(self._make_encoder)
        self.encoder = ungrouped(self._make_encoder())
        self.started_at = time.monotonic()
        if self._source is not None:
            self._thread = threading.Thread(target=self._run, args=(self._file_loop,),
                                            name="pacodec-send", daemon=True)
            self._thread.start()
            return self
        sd = sounddevice()
        self._hold_fast_switching()
        self._thread = threading.Thread(target=self._run, args=(self._mic_loop,),
                                        name="pacodec-send", daemon=True)
        self._thread.start()
        try:
            self._stream = sd.InputStream(samplerate=self.samplerate, channels=self.channels,
                                          dtype="float32", blocksize=self.settings.blocksize,
                                          device=self.settings.device, latency="low",
                                          callback=self._callback)
            self._stream.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        self._close_stream()
        self._stop_worker(10.0)
        if self._own_transport:
            self.transport.close()
        self._release_fast_switching()

    def stats(self):
        elapsed = self._elapsed()
        return {
            **self._common_stats(elapsed), "packets": self.seq, "datagrams": self.datagrams,
            "frames_per_packet": self.settings.frames_per_packet, "bytes": self.bytes,
            "bitrate_kbps": kbps(self.bytes, elapsed),
            "seconds_sent": round(self.samples_in / self.samplerate, 3),
            "input_overflows": self.input_overflows, "input_dropped": self.input_dropped,
            "send_errors": self.transport.send_errors,
            "frame_size": self.encoder.frame_size if self.encoder else None,
            "session": f"{self.session:08x}", "authenticated": self.key is not None,
        }

    def status_text(self):
        s = self.stats()
        return (f"send {s['bitrate_kbps']:6.1f} kbit/s  packets {s['packets']}  "
                f"sent {s['seconds_sent']:.1f} s  overruns {s['input_overflows']}  "
                f"cpu {100 * (s['cpu_per_second'] or 0):.0f}%")
