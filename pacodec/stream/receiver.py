"""``Receiver``: UDP packets -> adaptive jitter buffer -> Decoder (with concealment) -> speakers
or a WAV file.

Threads:

* **network thread** (``pacodec-recv-net``): ``recvfrom`` with a 0.1 s timeout, unpacks with
  ``pacodec.bitstream.unpack_packet`` and inserts into the :class:`~.jitter.JitterBuffer`
  (bad packets are counted and dropped);
* **playout thread** (``pacodec-recv``): first *joins* the stream — hands packets to the
  decoder as they come until it has seen a configuration (at most one second of stream) —
  then opens the output at the stream's rate and channels and runs the playout clock:
  with a sound card, it tops the output ring up to its target whenever the audio callback has
  consumed a block; with ``output=PATH`` it follows the wall clock.  Each playout step pops
  one frame from the jitter buffer and decodes it, or conceals it
  (``Decoder.decode_packet(None)``) when it is lost or has not arrived;
* **audio callback** (sound card only): copies from the output ring into the block, zero-fills
  what is missing, counts, and posts a wake-up token — nothing else;
* the caller's thread: ``start``/``stop``/``stats``/``run``.

Counters: ``lost`` (a packet missing when later ones were already here: concealed), ``late``
(arrived after its turn: dropped), ``underruns`` (nothing to play: concealed while waiting,
which stretches the latency), ``skipped`` (decoded but dropped to shorten the latency),
``concealed`` (the decoder's own count: lost + underruns + corrupt frames), ``depth``.
"""
import queue
import threading
import time

import numpy as np

from ..errors import FormatError
from ._audio import AudioPipeline, StatusLine, playable_rate, sounddevice, warm_codec
from .jitter import JitterBuffer
from .live import default_decoder_factory
from .resample import StreamResampler
from .ringbuffer import RingBuffer
from .transport import UdpTransport

__all__ = ["Receiver"]


class Receiver(AudioPipeline):
    """Receive a pacodec UDP stream on ``bind=(host, port)`` and play it.

    ``output=None`` plays to ``device``; ``output="x.wav"`` writes the decoded audio (in real
    time, silence where playback waited).  With a device, the playout thread keeps one frame
    plus one audio block plus ``ring_margin`` seconds in the output ring.  ``min_delay``/``max_delay`` bound the jitter
    buffer's target (seconds).
    """

    def __init__(self, bind=("0.0.0.0", 0), *, output=None, device=None, blocksize=0,
                 min_delay=0.0, max_delay=0.5, margin=0.010, decoder_factory=None,
                 transport=None, unpack=None, switch_interval=0.001, idle_timeout=None,
                 ring_margin=0.005):
        self.output = output
        self.device = device
        self.blocksize = int(blocksize)
        self.switch_interval = switch_interval
        self.idle_timeout = idle_timeout
        self.ring_margin = float(ring_margin)
        self._make_decoder = decoder_factory or default_decoder_factory()
        if unpack is None:
            from ..bitstream import unpack_packet as unpack
        self._unpack = unpack
        self.transport = transport or UdpTransport(bind=bind, timeout=0.1)
        self._own_transport = transport is None
        self.jitter = JitterBuffer(min_delay=min_delay, max_delay=max_delay, margin=margin)
        self.decoder = None
        self.samplerate = None
        self.channels = None
        self.frame_size = None
        self.ring = None
        self.resampler = None         # set when the device cannot play the stream's rate
        self.device_rate = None
        self._wake = queue.SimpleQueue()
        self._arrived = threading.Event()
        self._stop = threading.Event()
        self._threads = []
        self._stream = None
        self._file = None
        self._switch = None
        self.bad_packets = 0
        self.streams_ended = 0
        self.packets = 0
        self.bytes = 0
        self.last_packet_at = None
        self.first_packet_at = None
        self.samples_out = 0
        self.codec_seconds = 0.0
        self.callbacks = 0
        self.output_underflows = 0
        self.ring_underruns = 0
        self.playing_since = None
        self.error = None
        self.started_at = None
        self.idle = False
        self._device_latency = 0.0

    @property
    def address(self):
        return self.transport.address

    # ------------------------------------------------------------------ network thread
    def _net_loop(self):
        try:
            while not self._stop.is_set():
                data = self.transport.recv()
                if data is None:
                    continue
                now = time.monotonic()
                try:
                    seq, ts, frame = self._unpack(data)
                except (FormatError, ValueError):
                    self.bad_packets += 1
                    continue
                self.packets += 1
                self.bytes += len(data)
                self.last_packet_at = now
                if self.first_packet_at is None:
                    self.first_packet_at = now
                self.jitter.insert(seq, ts, frame, now)
                self._arrived.set()
        except BaseException as exc:
            self.error = exc
            self._stop.set()

    # ------------------------------------------------------------------ audio thread
    def _callback(self, outdata, frames, time_info, status):
        if status and status.output_underflow:
            self.output_underflows += 1
        ring = self.ring
        started = ring.total_read
        got = ring.read_into(outdata)
        if got < frames and started:
            self.ring_underruns += 1
        self.callbacks += 1
        self._wake.put_nowait(frames)

    # ------------------------------------------------------------------ playout thread
    def _join(self):
        """Feed packets to the decoder until it knows the stream parameters."""
        dec = self.decoder
        while not self._stop.is_set() and dec.samplerate is None:
            p = self.jitter.pop_any()
            if p is None:
                self._arrived.wait(0.05)
                self._arrived.clear()
                continue
            dec.decode_packet(p.payload)   # output before a config is empty
        return dec.samplerate is not None

    def _step(self):
        """One playout step: ``(kind, samples)``; samples is None when playback waits.

        Frames the jitter buffer skips (to shorten the latency) are decoded and dropped
        within the same step, so they cost no playout time.
        """
        dec = self.decoder
        t0 = time.perf_counter()
        try:
            while True:
                p = self.jitter.pop()
                if p.kind == "skip":
                    dec.decode_packet(p.payload)
                    continue
                if p.kind == "frame":
                    pcm = dec.decode_packet(p.payload)
                    if not len(pcm) and dec.samplerate is not None:
                        # only the end-of-stream frame decodes to nothing once configured
                        self.jitter.end_of_stream()
                        self.streams_ended += 1
                elif p.kind in ("lost", "underrun"):
                    pcm = dec.decode_packet(None)
                else:       # "wait"
                    pcm = None
                break
        finally:
            self.codec_seconds += time.perf_counter() - t0
        if pcm is not None and pcm.size and self.playing_since is None:
            self.playing_since = time.monotonic()
        return p.kind, pcm

    def _play_loop(self):
        try:
            if not self._join():
                return
            dec = self.decoder
            self.samplerate, self.channels = dec.samplerate, dec.channels
            self.frame_size = dec.frame_size
            self.jitter.configure(self.samplerate, self.frame_size)
            if self.output is not None:
                self._file_loop()
            else:
                self._device_loop()
        except BaseException as exc:
            self.error = exc
            self._stop.set()

    def _idle_expired(self):
        if self.idle_timeout is None or self.last_packet_at is None:
            return False
        if time.monotonic() - self.last_packet_at > self.idle_timeout:
            self.idle = True
            return True
        return False

    def _file_loop(self):
        import soundfile as sf
        hop = self.frame_size
        self._file = sf.SoundFile(str(self.output), "w", samplerate=self.samplerate,
                                  channels=self.channels, subtype="FLOAT")
        silence = np.zeros((hop, self.channels), np.float32)
        t0 = time.monotonic()
        steps = 0
        while not self._stop.is_set() and not self._idle_expired():
            due = int((time.monotonic() - t0) * self.samplerate / hop)
            if steps >= due:
                self._stop.wait(max(0.001, (steps + 1) * hop / self.samplerate
                                    - (time.monotonic() - t0)))
                continue
            steps += 1
            kind, pcm = self._step()
            if pcm is not None and pcm.size:
                self._file.write(pcm)
                self.samples_out += len(pcm)
            elif kind == "wait" and self.playing_since is not None:
                self._file.write(silence)     # keep real time while re-buffering
                self.samples_out += hop

    def _device_loop(self):
        sd = sounddevice()
        rate = playable_rate(sd, self.device, self.samplerate, self.channels)
        if rate != self.samplerate:
            self.resampler = StreamResampler(self.samplerate, rate, self.channels)
        self.device_rate = rate
        hop = -(-self.frame_size * rate // self.samplerate)    # a frame, at the device rate
        self.ring = RingBuffer(max(rate, 8 * hop), self.channels)
        self._ring_margin = int(self.ring_margin * rate)
        period = self.blocksize or 256
        self._stream = sd.OutputStream(samplerate=rate, channels=self.channels,
                                       dtype="float32", blocksize=self.blocksize,
                                       device=self.device, latency="low",
                                       callback=self._callback)
        try:
            self._device_latency = float(self._stream.latency)
        except Exception:
            self._device_latency = 0.0
        self._stream.start()
        while not self._stop.is_set() and not self._idle_expired():
            try:
                n = self._wake.get(timeout=0.05)
                if n:
                    period = n
            except queue.Empty:
                pass
            target = hop + period + self._ring_margin
            while self.ring.available < target and self.ring.free >= hop:
                kind, pcm = self._step()
                if pcm is None:
                    if kind == "wait":
                        break
                    continue
                if pcm.size:
                    if self.resampler is not None:
                        pcm = self.resampler.process(pcm)
                    self.ring.write(pcm)
                    self.samples_out += len(pcm) * self.samplerate / self.device_rate

    # ------------------------------------------------------------------ control
    def start(self):
        self.decoder = self._make_decoder()
        self._warm_decoder()
        if self.output is None:
            sounddevice()          # fail early (before any packet) if PortAudio is missing
            self._hold_fast_switching()
        self.started_at = time.monotonic()
        for target, name in ((self._net_loop, "pacodec-recv-net"),
                             (self._play_loop, "pacodec-recv")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _warm_decoder(self):
        """Compile the decoder's kernels with a throwaway 48 kHz stereo stream."""
        try:
            from ..encoder import Encoder
        except ImportError:
            return
        try:
            warm_codec(lambda: Encoder(48000, 2, bitrate=64), self._make_decoder)
        except Exception:
            pass

    def stop(self):
        self._stop.set()
        self._arrived.set()
        self._wake.put_nowait(0)
        for t in self._threads:
            t.join(5.0)
        self._threads = []
        self._close_stream()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._own_transport:
            self.transport.close()
        self._release_fast_switching()

    @property
    def done(self):
        """True when the playout thread has ended (idle timeout, error or stop)."""
        return self._stop.is_set() or (self._threads and not self._threads[1].is_alive())

    def stats(self):
        jb = self.jitter.stats()
        elapsed = time.monotonic() - self.started_at if self.started_at else 0.0
        active = (self.last_packet_at - self.first_packet_at) if self.first_packet_at else 0.0
        fd = (self.frame_size / self.samplerate) if self.samplerate else None
        ring_ms = (1000.0 * self.ring.available / self.device_rate
                   if self.ring is not None and self.device_rate else 0.0)
        expected = jb["played"] + jb["skipped"] + jb["lost"]
        return {
            "elapsed": round(elapsed, 3), "packets": self.packets, "bad_packets": self.bad_packets,
            "bitrate_kbps": round(8.0 * self.bytes / active / 1000.0, 2) if active > 0 else 0.0,
            "samplerate": self.samplerate, "channels": self.channels,
            "frame_size": self.frame_size, **jb,
            "loss_percent": round(100.0 * jb["lost"] / expected, 2) if expected else 0.0,
            "buffer_ms": round(jb["depth_frames"] * fd * 1000.0, 1) if fd else None,
            "target_ms": round(jb["target_frames"] * fd * 1000.0, 1) if fd else None,
            "output_ring_ms": round(ring_ms, 1),
            "device_latency_ms": round(1000.0 * self._device_latency, 2),
            "device_rate": self.device_rate,
            "concealed": self.decoder.concealed if self.decoder is not None else 0,
            "crc_errors": self.decoder.crc_errors if self.decoder is not None else 0,
            "ring_underruns": self.ring_underruns, "output_underflows": self.output_underflows,
            "seconds_out": round(self.samples_out / self.samplerate, 3) if self.samplerate else 0.0,
            "cpu_per_second": round(self.codec_seconds / elapsed, 4) if elapsed > 0 else None,
            "idle": self.idle, "streams_ended": self.streams_ended, "error": None if self.error is None else repr(self.error),
        }

    def status_text(self):
        s = self.stats()
        if s["samplerate"] is None:
            return f"receive: waiting for a stream on port {self.address[1]} ..."
        return (f"receive {s['bitrate_kbps']:6.1f} kbit/s  loss {s['lost']} "
                f"({s['loss_percent']:.1f}%)  late {s['late']}  buffer {s['buffer_ms']} ms "
                f"(target {s['target_ms']})  concealed {s['concealed']}  "
                f"underruns {s['underruns'] + s['ring_underruns']}")

    def run(self, duration=None, status=None):
        status = status or StatusLine()
        if self.started_at is None:
            self.start()
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while (deadline is None or time.monotonic() < deadline) and not self.done:
                status.update(self.status_text())
                time.sleep(0.25 if deadline is None else
                           max(0.0, min(0.25, deadline - time.monotonic())))
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            status.finish(self.status_text())
        if self.error is not None:
            raise self.error
        return self.stats()
