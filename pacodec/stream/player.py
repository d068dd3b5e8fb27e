"""``FilePlayer``: real-time playback of a ``.pac`` file, with a position display.

Threads: the **decoder thread** (``pacodec-play``) reads the file in small chunks, decodes them
(``Decoder.feed``, byte-stream mode, gapless) and writes the audio into a preallocated ring,
waiting (on wake-up tokens, with a timeout) while the ring is full; the **audio callback** only
copies from the ring to the output block and posts a token; the caller's thread starts, stops
and draws the status line.  The ring is filled before the stream starts, so playback begins
without an underrun.  ``start=SECONDS`` decodes and discards everything before that time.
"""
import queue
import threading
import time

import numpy as np

from ._audio import AudioPipeline, fmt_time, playable_rate, sounddevice
from .resample import StreamResampler
from .live import default_decoder_factory
from .ringbuffer import RingBuffer

__all__ = ["FilePlayer"]

CHUNK_BYTES = 4096


class FilePlayer(AudioPipeline):
    COUNTERS = ("underruns", "output_underflows")

    def __init__(self, path, *, start=0.0, device=None, blocksize=0, buffer_seconds=0.5,
                 decoder_factory=None, switch_interval=0.001):
        self.path = str(path)
        self.start_time = max(0.0, float(start or 0.0))
        self.device = device
        self.blocksize = int(blocksize)
        self.buffer_seconds = float(buffer_seconds)
        self.switch_interval = switch_interval
        self._make_decoder = decoder_factory or default_decoder_factory()
        self.decoder = None
        self.samplerate = None
        self.channels = None
        self.duration = None
        self.ring = None
        self.resampler = None
        self.device_rate = None
        self._f = None
        self._skip = 0
        self._pending = None
        self._eof = False
        self._wake = queue.SimpleQueue()
        self._stop = threading.Event()
        self._end_event = threading.Event()
        self._thread = None
        self.zero_counters()

    # ------------------------------------------------------------------ decoding
    def _decode_more(self):
        """Decode the next chunk; returns samples (possibly empty) or None at the end."""
        if self._eof:
            return None
        data = self._f.read(CHUNK_BYTES)
        if not data:
            self._eof = True
            pcm = self.decoder.finish()
        else:
            pcm = self.decoder.feed(data)
        if self._skip and len(pcm):
            k = min(self._skip, len(pcm))
            self._skip -= k
            pcm = pcm[k:]
        return pcm

    def _fill(self, block=True):
        """Decode into the ring until it is full (or the file ends)."""
        while not self._stop.is_set():
            if self._pending is None:
                pcm = self._decode_more()
                if pcm is None:
                    return False
                if not len(pcm):
                    continue
                if self.resampler is not None:
                    pcm = self.resampler.process(pcm)
                self._pending = np.asarray(pcm, np.float32)
            if self.ring.free < len(self._pending):
                if not block:
                    return True
                try:
                    self._wake.get(timeout=0.1)
                except queue.Empty:
                    pass
                continue
            self.ring.write(self._pending)
            self._pending = None
        return True

    def _decode_loop(self):
        try:
            more = True
            while more and not self._stop.is_set():
                more = self._fill(block=True)
            # let the ring drain
            while not self._stop.is_set() and self.ring.available > 0:
                try:
                    self._wake.get(timeout=0.1)
                except queue.Empty:
                    pass
        except BaseException as exc:
            self.error = exc
        finally:
            self._end_event.set()

    # ------------------------------------------------------------------ audio thread
    def _callback(self, outdata, frames, time_info, status):
        if status and status.output_underflow:
            self.output_underflows += 1
        got = self.ring.read_into(outdata)
        if got < frames and not self._eof:
            self.underruns += 1
        self._wake.put_nowait(None)

    # ------------------------------------------------------------------ control
    def start(self):
        self._f = open(self.path, "rb")
        sd = sounddevice()
        self.decoder = self._make_decoder()
        # decode until the stream parameters are known
        first = []
        while self.decoder.samplerate is None:
            data = self._f.read(CHUNK_BYTES)
            if not data:
                self.decoder.finish()
                break
            pcm = self.decoder.feed(data)
            if len(pcm):
                first.append(pcm)
        if self.decoder.samplerate is None:
            from ..errors import FormatError
            raise FormatError(f"{self.path}: no pacodec stream found")
        self.samplerate, self.channels = self.decoder.samplerate, self.decoder.channels
        total = getattr(self.decoder, "total_length", None)
        self.duration = total / self.samplerate if total else None
        self._skip = int(round(self.start_time * self.samplerate))
        self.device_rate = playable_rate(sd, self.device, self.samplerate, self.channels)
        if self.device_rate != self.samplerate:
            self.resampler = StreamResampler(self.samplerate, self.device_rate, self.channels)
        self.ring = RingBuffer(max(int(self.buffer_seconds * self.device_rate), 4096),
                               self.channels)
        if first:
            pcm = np.concatenate(first)
            k = min(self._skip, len(pcm))
            self._skip -= k
            self._pending = pcm[k:] if k < len(pcm) else None
            if self._pending is not None and self.resampler is not None:
                self._pending = self.resampler.process(self._pending)
        self._fill(block=False)     # preroll
        self._hold_fast_switching()
        self._thread = threading.Thread(target=self._decode_loop, name="pacodec-play",
                                        daemon=True)
        self._thread.start()
        self._stream = sd.OutputStream(samplerate=self.device_rate, channels=self.channels,
                                       dtype="float32", blocksize=self.blocksize,
                                       device=self.device, callback=self._callback)
        self._stream.start()
        self.started_at = time.monotonic()
        return self

    def stop(self):
        self._stop_worker(5.0)
        self._close_stream()
        if self._f is not None:
            self._f.close()
            self._f = None
        self._release_fast_switching()

    @property
    def position(self):
        """Seconds of the file played so far (including ``start``)."""
        if self.ring is None or not self.samplerate:
            return self.start_time
        return self.start_time + self.ring.total_read / self.device_rate

    def stats(self):
        return {"position": round(self.position, 3), "duration": self.duration,
                "samplerate": self.samplerate, "channels": self.channels,
                **self.counters(), "error": self._error_text()}

    def status_text(self):
        total = f" / {fmt_time(self.duration)}" if self.duration else ""
        return (f"play {fmt_time(self.position)}{total}  {self.samplerate} Hz "
                f"{self.channels} ch  underruns {self.underruns}")
