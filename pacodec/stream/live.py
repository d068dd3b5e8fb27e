"""``LivePipeline``: microphone -> Encoder -> Decoder -> speakers on one machine.

Threads and what each may do:

* **audio callback** (PortAudio's thread; one duplex stream): copies the input block into
  ``in_ring``, copies ``out_ring`` into the output block (zeros where it runs dry), bumps
  integer counters and posts a wake-up token on a ``SimpleQueue``.  No allocation of audio
  buffers, no I/O, no codec work, no blocking, no lock the codec thread holds.
* **codec thread** (``pacodec-live``): waits for a token (with a timeout), then while a whole
  frame is in ``in_ring`` encodes it, decodes every packet produced (``decode_packet``, the
  same path a network receiver uses) and writes the audio into ``out_ring``.
* **caller's thread**: ``start``/``stop``/``stats``; ``run(duration)`` also draws the status
  line.  ``stats()`` only reads counters and may be called from any thread.

Latency adapts upwards by itself: if the codec thread misses a period, the callback plays
silence for it and every later sample comes out that much later (counted as an underrun).
It adapts downwards in the codec thread: when the output ring has held more than one block
plus ``margin`` at every callback for ``adapt_window`` seconds, that surplus is dropped from
the next decoded frame (``dropped_samples``, ``adaptations``).  If the codec thread falls
more than ``max_backlog`` seconds behind the microphone (a starved CPU), the backlog is dropped
(``input_dropped``) instead of being kept as latency.

The codec is warmed (a few frames encoded and decoded) before the stream opens, so the first
real frames do not pay numba's compilation.
"""
import queue
import threading
import time

import numpy as np

from ._audio import AudioPipeline, kbps, sounddevice, ungrouped, warm_codec
from .ringbuffer import RingBuffer

__all__ = ["LivePipeline", "default_encoder_factory", "default_decoder_factory"]


def default_encoder_factory(samplerate, channels, bitrate=128, low_delay=False, **kw):
    # group=1: a live stream sends every frame as soon as it is coded (no frame groups, FORMAT.md
    # §4, which are for files: a group would hold frames back and packets carry none, §9)
    kw.setdefault("group", 1)

    def make():
        from ..encoder import Encoder
        return Encoder(samplerate, channels, bitrate=bitrate, low_delay=low_delay, **kw)
    return make


def default_decoder_factory(**kw):
    def make():
        from ..decoder import Decoder
        return Decoder(**kw)
    return make


class LivePipeline(AudioPipeline):
    """Microphone -> codec -> speakers.

    ``LivePipeline(samplerate=48000, channels=2, bitrate=128, low_delay=False, device=None)``;
    ``device`` is anything sounddevice accepts, or an ``(input, output)`` pair.  Use as a
    context manager or call :meth:`start` / :meth:`stop`.
    """

    # written by the callback: callbacks, input_overflows (PortAudio input-overflow flags +
    # ring overflows), output_underflows (PortAudio output-underflow flags), underruns
    # (callbacks whose output ring ran dry after the start), status_flags; by the codec
    # thread: frames, blocks_coded (input frames fully encoded, decoded and queued),
    # input_dropped (input samples dropped because the codec fell behind), dropped (decoded
    # samples dropped to shorten the latency), adaptations, bytes
    COUNTERS = ("callbacks", "input_overflows", "output_underflows", "underruns",
                "status_flags", "frames", "blocks_coded", "input_dropped", "dropped",
                "adaptations", "bytes")

    def __init__(self, *, samplerate=48000, channels=2, bitrate=128, low_delay=False,
                 device=None, blocksize=0, encoder_factory=None, decoder_factory=None,
                 ring_seconds=1.0, switch_interval=0.001, adapt_window=1.0, margin=0.003,
                 max_backlog=0.1, first_adapt=0.3):
        self.samplerate = int(samplerate)
        self.channels = int(channels)
        self.bitrate = bitrate
        self.low_delay = bool(low_delay)
        self.device = device
        self.blocksize = int(blocksize)
        self.switch_interval = switch_interval
        self.adapt_window = adapt_window
        self.margin = float(margin)
        self._max_backlog = int(max_backlog * self.samplerate)
        self.first_adapt = float(first_adapt)
        self._make_encoder = encoder_factory or default_encoder_factory(
            self.samplerate, self.channels, bitrate=bitrate, low_delay=self.low_delay)
        self._make_decoder = decoder_factory or default_decoder_factory()
        cap = max(int(ring_seconds * self.samplerate), 8192)
        self.in_ring = RingBuffer(cap, self.channels)
        self.out_ring = RingBuffer(cap, self.channels)
        self._wake = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = None
        self.encoder = None
        self.decoder = None
        self.zero_counters()
        self._lat_samples = None      # pipeline latency in samples, sampled per callback
        self._min_level = 1 << 62      # lowest output-ring level seen by the callback
        self._last_frames = 0
        self._check_at = None
        self._device_latency = 0.0

    # ------------------------------------------------------------------ audio thread
    def _callback(self, indata, outdata, frames, time_info, status):
        if status:
            self.status_flags += 1
            if status.input_overflow:
                self.input_overflows += 1
            if status.output_underflow:
                self.output_underflows += 1
        in_ring = self.in_ring
        out_ring = self.out_ring
        captured = in_ring.total_written
        if in_ring.write(indata) < frames:
            self.input_overflows += 1
        played = out_ring.total_read
        level = out_ring.available
        if level < self._min_level:
            self._min_level = level
        self._last_frames = frames
        got = out_ring.read_into(outdata)
        if played:
            if got < frames:
                self.underruns += 1
            self._lat_samples = captured - played
        elif got:
            self._lat_samples = captured - played
        self.callbacks += 1
        self._wake.put_nowait(None)

    # ------------------------------------------------------------------ codec thread
    def _codec_loop(self):
        enc, dec = self.encoder, self.decoder
        hop = enc.frame_size
        frame = np.zeros((hop, self.channels), np.float32)
        wake = self._wake
        try:
            while not self._stop.is_set():
                try:
                    wake.get(timeout=0.1)
                except queue.Empty:
                    continue
                while True:                       # drain surplus tokens
                    try:
                        wake.get_nowait()
                    except queue.Empty:
                        break
                backlog = self.in_ring.available
                if backlog > 2 * hop and (not self.frames or backlog > self._max_backlog):
                    # the stream started before this thread got going, or the codec fell
                    # behind (a starved CPU): drop the backlog rather than let it become
                    # permanent latency
                    dropped = (backlog // hop - 1) * hop
                    self.in_ring.skip(dropped)
                    self.input_dropped += dropped
                while self.in_ring.available >= hop and not self._stop.is_set():
                    t0 = time.perf_counter()
                    self.in_ring.read_into(frame)
                    for packet in enc.encode(frame):
                        self.frames += 1
                        self.bytes += len(packet)
                        pcm = dec.decode_packet(packet)
                        if pcm.size:
                            drop = self._plan_drop(len(pcm))
                            if drop:
                                pcm = pcm[drop:]
                                self.dropped += drop
                            self.out_ring.write(pcm)
                    self.codec_seconds += time.perf_counter() - t0
                    self.blocks_coded += 1
        except BaseException as exc:   # reported by stats()/stop(); the stream keeps running
            self.error = exc
            self._stop.set()

    def _plan_drop(self, n):
        """Latency adaptation downwards (codec thread): once per ``adapt_window`` seconds,
        if the output ring never fell below one block plus ``margin`` just before the callback
        read it, the surplus is pure latency (left over from earlier underruns): drop it
        from the head of the next decoded frame."""
        now = time.monotonic()
        if self.adapt_window is None:
            return 0
        if self._check_at is None:
            # first check soon after the start: the first frames of a fresh process are
            # often late (page faults, caches), which leaves surplus latency behind
            self._check_at = now - self.adapt_window + self.first_adapt
            self._min_level = 1 << 62
            return 0
        if now - self._check_at < self.adapt_window:
            return 0
        low = self._min_level
        self._min_level = 1 << 62
        self._check_at = now
        if low >= 1 << 62 or not self._last_frames:
            return 0
        margin = int(self.margin * self.samplerate)
        surplus = low - self._last_frames - margin
        if surplus <= 0:
            return 0
        self.adaptations += 1
        return min(surplus, n)

    # ------------------------------------------------------------------ control
    def start(self):
        sd = sounddevice()
        warm_codec(self._make_encoder, self._make_decoder)
        self.encoder = ungrouped(self._make_encoder())
        self.decoder = self._make_decoder()
        self._hold_fast_switching()
        self._thread = threading.Thread(target=self._codec_loop, name="pacodec-live",
                                        daemon=True)
        self._thread.start()
        try:
            self._stream = sd.Stream(samplerate=self.samplerate, channels=self.channels,
                                     dtype="float32", blocksize=self.blocksize,
                                     device=self.device, latency="low",
                                     callback=self._callback)
            self._stream.start()
            try:
                self._device_latency = float(sum(self._stream.latency))
            except Exception:
                self._device_latency = 0.0
        except BaseException:
            self.stop()
            raise
        self.started_at = time.monotonic()
        return self

    def stop(self):
        self._close_stream()
        self._stop_worker(5.0)
        self._release_fast_switching()

    @property
    def running(self):
        return self._stream is not None and not self._stop.is_set()

    @property
    def finished(self):
        """True once the codec thread failed (a live pipeline runs until stopped)."""
        return self.error is not None

    def latency(self):
        """Estimated mic -> speaker latency in seconds (pipeline + device), or None."""
        lat = self._lat_samples
        if lat is None:
            return None
        device = self._device_latency
        # input sample `captured` is being recorded while decoded sample `played`, i.e. input
        # sample `played - encoder.delay`, is being played
        # (decoded index = samples read from the ring + samples dropped before writing)
        return (lat - self.dropped + self.encoder.delay) / self.samplerate + device

    def encoder_delay_seconds(self):
        return self.encoder.delay / self.samplerate if self.encoder is not None else 0.0

    def stats(self):
        elapsed = self._elapsed()
        lat = self.latency()
        return {
            **self._common_stats(elapsed), "frames": self.frames,
            "bitrate_kbps": kbps(self.bytes, elapsed), "latency_ms": None if lat is None
            else round(1000.0 * lat, 2),
            "input_overflows": self.input_overflows, "output_underflows": self.output_underflows,
            "underruns": self.underruns, "callbacks": self.callbacks,
            "dropped_samples": self.dropped, "adaptations": self.adaptations,
            "input_dropped": self.input_dropped,
            "frame_size": self.encoder.frame_size if self.encoder else None,
            "codec_delay_ms": round(1000.0 * self.encoder_delay_seconds(), 2),
        }

    def status_text(self):
        s = self.stats()
        lat = "?" if s["latency_ms"] is None else f"{s['latency_ms']:.1f} ms"
        return (f"live {s['bitrate_kbps']:6.1f} kbit/s  latency {lat}  "
                f"overruns {s['input_overflows']}  underruns {s['underruns'] + s['output_underflows']}"
                f"  cpu {100 * (s['cpu_per_second'] or 0):.0f}%")
