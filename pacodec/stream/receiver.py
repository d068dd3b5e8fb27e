"""``Receiver``: UDP packets -> session filter -> adaptive jitter buffer -> Decoder (with
concealment) -> speakers or a WAV file.

Threads:

* **network thread** (``pacodec-recv-net``): ``recvfrom`` with a 0.1 s timeout; every datagram
  goes through the :class:`~.session.SessionFilter` (MAC with a key, session and source lock,
  RFC 3550-style sequence checks; everything else is counted and dropped) and what it accepts
  is inserted into the :class:`~.jitter.JitterBuffer`;
* **playout thread** (``pacodec-recv``): first *joins* the stream — hands packets to the
  decoder as they come until it has seen a configuration — then opens the output at the
  stream's rate and channels and runs the playout clock: with a sound card, it tops the output
  ring up to its target whenever the audio callback has consumed a block; with ``output=PATH``
  it follows the wall clock.  Each playout step pops one frame from the jitter buffer and
  decodes it, or conceals it (``Decoder.decode_packet(None)``) when its deadline has passed or
  nothing has arrived.  Decoded audio is limited to full scale (+-1.0) before it is played or
  written;
* **audio callback** (sound card only): copies from the output ring into the block, zero-fills
  what is missing, counts, and posts a wake-up token — nothing else;
* the caller's thread: ``start``/``stop``/``stats``/``run``.

A new session (accepted by the session filter after the old one ended or went silent) gets a
fresh decoder; if its rate, channels or frame size differ from the open output, the output is
reopened (a file output starts again: what the earlier session wrote is discarded).

``output=PATH`` is written like ``pacodec decode`` writes: to a temporary file beside it,
renamed into place when the receiver stops; an existing file (or symbolic link) is refused
unless ``force=True``, and a link is replaced, never written through.  No file is made when no
stream came.

Counters: ``lost`` (a packet whose deadline passed: concealed), ``late`` (arrived after its
turn: dropped), ``underruns`` (nothing to play yet: concealed while waiting, which stretches the
latency), ``skipped`` (frames time-compressed away to shorten the latency), ``concealed`` (the
decoders' own count: lost + underruns + corrupt frames), ``depth``; the session filter's
``unauthenticated``, ``malformed``, ``foreign``, ``replayed``, ``jumps``, ``restarts``,
``sessions``; ``clipped`` (samples limited to full scale).
"""
import os
import queue
import threading
import time

import numpy as np

from ..errors import PacodecError
from ._audio import AudioPipeline, kbps, playable_rate, sounddevice, warm_codec
from .jitter import JitterBuffer
from .live import default_decoder_factory
from .resample import StreamResampler
from .ringbuffer import RingBuffer
from .session import SessionFilter
from .settings import ReceiverSettings, make_settings
from .timescale import compress
from .transport import UdpTransport

__all__ = ["Receiver", "check_output"]

MAX_ERRORS = 8          # decoder messages kept (the count is in crc_errors)


class _Reconfigure(Exception):
    """The new session's stream parameters differ from the open output."""


class _Discard(Exception):
    """Abandon a partial output file."""


def check_output(path, force=False):
    """Refuse an output path that exists (a file, a directory, a link) unless ``force``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise PacodecError(f"{path} is a directory")
    if os.path.lexists(path) and not force:
        raise PacodecError(f"{path} exists (use --force / force=True to overwrite)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise PacodecError(f"directory {directory} does not exist")


class Receiver(AudioPipeline):
    """Receive a pacodec UDP stream on ``bind=(host, port)`` and play it.

    The options are a :class:`~.settings.ReceiverSettings` (``settings=``) or its fields as
    keywords.  ``output=None`` plays to ``device``; ``output="x.wav"`` writes the decoded audio
    (in real time, silence where playback waited; see the module docstring for how).  ``key``
    (bytes, see :func:`.packet.load_key`) accepts only packets carrying its MAC.  With a
    device, the playout thread keeps one frame plus one audio block plus ``ring_margin``
    seconds in the output ring.  ``min_delay``/``max_delay`` bound the jitter buffer's target
    (seconds); ``silence`` is how long a session may be quiet before another may take over.
    """

    COUNTERS = ("streams_ended", "eos_ignored", "reconfigured", "clipped", "packets", "bytes",
                "samples_out", "callbacks", "output_underflows", "ring_underruns")

    # settings the pipeline reads, as views of the one copy in ``self.settings``
    output = property(lambda self: self.settings.output, doc="where the stream is written, or None")
    key = property(lambda self: self.settings.key, doc="the stream key, or None (unauthenticated)")
    switch_interval = property(lambda self: self.settings.switch_interval,
                               doc="the interpreter's thread switch interval while running")

    def __init__(self, bind=("0.0.0.0", 0), *, settings=None, decoder_factory=None,
                 transport=None, **options):
        self.settings = cfg = make_settings(ReceiverSettings, settings, options)
        if cfg.output is not None:
            check_output(cfg.output, cfg.force)
        self._make_decoder = decoder_factory or default_decoder_factory()
        self.session = SessionFilter(cfg.key, silence=cfg.silence)
        self.transport = transport or UdpTransport(bind=bind, timeout=0.1)
        self._own_transport = transport is None
        self.jitter = JitterBuffer(min_delay=cfg.min_delay, max_delay=cfg.max_delay,
                                   margin=cfg.margin, seq_bits=None)
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
        self._gen_lock = threading.Lock()
        self._gen = 0                 # bumped by the network thread for each new session
        self._dec_gen = 0
        self._preroll = None          # audio decoded while joining, played first
        self._threads = []
        self._file = None
        self._out_cm = None
        self._ended = False            # the stream's end-of-stream frame was played
        self.zero_counters()
        self.last_packet_at = None
        self.first_packet_at = None
        self.playing_since = None
        self.idle = False
        self.written = None           # the output path once the file is complete
        self._old_concealed = 0       # counts of the decoders of earlier sessions
        self._old_crc = 0
        self._device_latency = 0.0

    @property
    def address(self):
        return self.transport.address

    @property
    def bad_packets(self):
        s = self.session
        return s.malformed + s.unauthenticated

    # ------------------------------------------------------------------ network thread
    def _net_loop(self):
        try:
            while not self._stop.is_set():
                data, addr = self.transport.recv_from()
                if data is None:
                    continue
                now = time.monotonic()
                acc = self.session.accept(data, addr, now)
                if not acc.packets:
                    continue
                with self._gen_lock:
                    if acc.event == "new":
                        self._gen += 1
                    if acc.event is not None:
                        self.jitter.reset()
                    for seq, ts, frame in acc.packets:
                        self.jitter.insert(seq, ts, frame, now)
                self.packets += len(acc.packets)      # frames (a datagram may carry several)
                self.bytes += len(data) if acc.event is None else len(data) * len(acc.packets)
                self.last_packet_at = now
                if self.first_packet_at is None:
                    self.first_packet_at = now
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
    def _fresh_decoder(self):
        """A new session: a new decoder (its counts are carried over)."""
        old = self.decoder
        if old is not None:
            self._old_concealed += old.concealed
            self._old_crc += old.crc_errors
        self.decoder = self._make_decoder()
        return self.decoder

    def _pop(self, join=False):
        with self._gen_lock:
            if self._dec_gen != self._gen:
                self._dec_gen = self._gen
                self._fresh_decoder()
            return self.jitter.pop_any() if join else self.jitter.pop()

    def _decode(self, payload):
        """Decode one packet's frame (``None``: conceal one frame), limited to full scale."""
        dec = self.decoder
        pcm = dec.decode_packet(payload)
        errs = dec.errors
        if isinstance(errs, list) and len(errs) > MAX_ERRORS:   # (a bounded log needs nothing)
            del errs[:-MAX_ERRORS]
        if pcm.size:
            # bound what reaches the speaker or file: full scale, no NaN/inf
            big = np.abs(pcm) > 1.0
            n = int(np.count_nonzero(big))
            if n or not np.isfinite(pcm).all():
                np.nan_to_num(pcm, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
                np.clip(pcm, -1.0, 1.0, out=pcm)
                self.clipped += n
        return pcm

    def _join(self):
        """Feed packets to the decoder until it knows the stream parameters."""
        while not self._stop.is_set():
            if self.decoder is not None and self.decoder.samplerate is not None:
                return True
            p = self._pop(join=True)
            if p is None:
                self._arrived.wait(0.05)
                self._arrived.clear()
                continue
            pcm = self._decode(p.payload)   # output before a config is empty
            if pcm.size:
                self._preroll = pcm           # the first frame: played by the first step
        return False

    def _check_params(self):
        dec = self.decoder
        if dec.samplerate is not None and (dec.samplerate, dec.channels, dec.frame_size) != (
                self.samplerate, self.channels, self.frame_size):
            raise _Reconfigure()

    def _step(self):
        """One playout step: ``(kind, samples)``; samples is None when playback waits.

        Frames the jitter buffer skips (to shorten the latency) are decoded in the same step
        and time-compressed into the next frame's output (:func:`.timescale.compress`), so they
        cost no playout time and make no whole-frame jump.
        """
        if self._preroll is not None:
            pcm, self._preroll = self._preroll, None
            if self.playing_since is None:
                self.playing_since = time.monotonic()
            return "frame", pcm
        t0 = time.perf_counter()
        pending = None
        try:
            while True:
                p = self._pop()
                if p.kind == "skip":
                    pcm = self._decode(p.payload)
                    self._check_params()
                    if pcm.size and self.playing_since is not None:
                        pending = pcm if pending is None else compress(pending, pcm)
                    continue
                if p.kind == "frame":
                    pcm = self._decode(p.payload)
                    self._check_params()
                    if not len(pcm) and self.decoder.samplerate is not None:
                        # only the end-of-stream frame decodes to nothing once configured
                        if self.jitter.depth > 0:
                            # later packets of the session are here: not the end (forged);
                            # its place in the stream is concealed
                            self.eos_ignored += 1
                            pcm = self._decode(None)
                            break
                        self.jitter.end_of_stream()
                        self.session.end_current()
                        self.streams_ended += 1
                        self._ended = True
                    elif pending is not None and len(pcm):
                        pcm = compress(pending, pcm)
                elif p.kind in ("lost", "underrun"):
                    pcm = self._decode(None)
                else:       # "wait"
                    pcm = None
                break
        finally:
            self.codec_seconds += time.perf_counter() - t0
        if pcm is not None and pcm.size:
            self._ended = False
            if self.playing_since is None:
                self.playing_since = time.monotonic()
        return p.kind, pcm

    def _play_loop(self):
        try:
            while not self._stop.is_set():
                if not self._join():
                    return
                dec = self.decoder
                self.samplerate, self.channels = dec.samplerate, dec.channels
                self.frame_size = dec.frame_size
                self.jitter.configure(self.samplerate, self.frame_size)
                try:
                    if self.output is not None:
                        self._file_loop()
                    else:
                        self._device_loop()
                    return
                except _Reconfigure:
                    self.reconfigured += 1
                    self._preroll = None
                    self._close_output(discard=True)
        except BaseException as exc:
            self.error = exc
            self._stop.set()

    def _idle_expired(self):
        timeout = self.settings.idle_timeout
        if timeout is None or self.last_packet_at is None:
            return False
        if time.monotonic() - self.last_packet_at > timeout:
            self.idle = True
            return True
        return False

    def _open_file(self):
        import soundfile as sf
        from ..pacfile import atomic_output
        cm = atomic_output(self.output, force=self.settings.force)
        fh = cm.__enter__()
        self._out_cm = cm
        try:
            self._file = sf.SoundFile(fh, "w", samplerate=self.samplerate,
                                      channels=self.channels, subtype="FLOAT", format="WAV")
        except BaseException:
            self._close_output(discard=True)
            raise

    def _close_output(self, discard=False):
        """Close the audio stream or the file: publish the file, or drop it (``discard``)."""
        self._close_stream()
        f, self._file = self._file, None
        cm, self._out_cm = self._out_cm, None
        if f is not None:
            try:
                f.close()
            except Exception:
                discard = True
        if cm is not None:
            if discard:
                cm.__exit__(_Discard, _Discard(), None)
            else:
                cm.__exit__(None, None, None)
                self.written = os.fspath(self.output)

    def _file_loop(self):
        hop = self.frame_size
        self._open_file()
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
            elif kind == "wait" and self.playing_since is not None and not self._ended:
                # keep real time while re-buffering (not after the end-of-stream frame: a file
                # would end in silence until the idle timeout)
                self._file.write(silence)
                self.samples_out += hop

    def _device_loop(self):
        sd = sounddevice()
        device = self.settings.device
        rate = playable_rate(sd, device, self.samplerate, self.channels)
        self.resampler = None
        if rate != self.samplerate:
            self.resampler = StreamResampler(self.samplerate, rate, self.channels)
        self.device_rate = rate
        hop = -(-self.frame_size * rate // self.samplerate)    # a frame, at the device rate
        self.ring = RingBuffer(max(rate, 8 * hop), self.channels)
        self._ring_margin = int(self.settings.ring_margin * rate)
        blocksize = self.settings.blocksize
        period = blocksize or 256
        self._stream = sd.OutputStream(samplerate=rate, channels=self.channels,
                                       dtype="float32", blocksize=blocksize,
                                       device=device, latency="low",
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
            while self.ring.available < target and self.ring.free >= 2 * hop:
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
        if self.output is None:
            # fail now, as play/live/send do, not when the first packet arrives: PortAudio
            # missing, no such device, or no default output (no sound card or audio server)
            sd = sounddevice()
            device = self.settings.device
            out = device[1] if isinstance(device, (tuple, list)) else device
            sd.query_devices(out, "output")
        self.decoder = self._make_decoder()
        self._warm_decoder()
        if self.output is None:
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
            t.join(10.0)
        alive = any(t.is_alive() for t in self._threads)
        self._threads = []
        if alive:      # the playout thread is stuck: do not publish a file it may still write
            self._close_output(discard=True)
        else:
            self._close_output()
        if self._own_transport:
            self.transport.close()
        self._release_fast_switching()

    @property
    def finished(self):
        """True when the playout thread has ended (idle timeout, error or stop)."""
        return self._stop.is_set() or bool(self._threads and not self._threads[1].is_alive())

    done = finished

    def stats(self):
        jb = self.jitter.stats()
        elapsed = self._elapsed()
        active = (self.last_packet_at - self.first_packet_at) if self.first_packet_at else 0.0
        fd = (self.frame_size / self.samplerate) if self.samplerate else None
        ring_ms = (1000.0 * self.ring.available / self.device_rate
                   if self.ring is not None and self.device_rate else 0.0)
        expected = jb["played"] + jb["skipped"] + jb["lost"]
        for k in ("first_seq", "last_seq"):     # the sender's own numbers
            if jb[k] is not None:
                jb[k] &= 0xFFFFFFFF
        return {
            **self._common_stats(elapsed), "packets": self.packets,
            "bad_packets": self.bad_packets, "datagrams": self.transport.received,
            "bitrate_kbps": kbps(self.bytes, active),
            "samplerate": self.samplerate, "channels": self.channels,
            "frame_size": self.frame_size, **jb,
            "loss_percent": round(100.0 * jb["lost"] / expected, 2) if expected else 0.0,
            "buffer_ms": round(jb["depth_frames"] * fd * 1000.0, 1) if fd else None,
            "target_ms": round(jb["target_frames"] * fd * 1000.0, 1) if fd else None,
            "output_ring_ms": round(ring_ms, 1),
            "device_latency_ms": round(1000.0 * self._device_latency, 2),
            "device_rate": self.device_rate,
            "concealed": self._old_concealed + (self.decoder.concealed if self.decoder else 0),
            "crc_errors": self._old_crc + (self.decoder.crc_errors if self.decoder else 0),
            **self.session.stats(), "authenticated": self.key is not None,
            "eos_ignored": self.eos_ignored, "reconfigured": self.reconfigured,
            "clipped": self.clipped, "output": self.written,
            "ring_underruns": self.ring_underruns, "output_underflows": self.output_underflows,
            "seconds_out": round(self.samples_out / self.samplerate, 3) if self.samplerate else 0.0,
            "idle": self.idle, "streams_ended": self.streams_ended,
        }

    def status_text(self):
        s = self.stats()
        if s["samplerate"] is None:
            return f"receive: waiting for a stream on port {self.address[1]} ..."
        return (f"receive {s['bitrate_kbps']:6.1f} kbit/s  loss {s['lost']} "
                f"({s['loss_percent']:.1f}%)  late {s['late']}  buffer {s['buffer_ms']} ms "
                f"(target {s['target_ms']})  concealed {s['concealed']}  "
                f"underruns {s['underruns'] + s['ring_underruns']}  ignored "
                f"{s['foreign'] + s['unauthenticated'] + s['malformed'] + s['jumps'] + s['replayed']}")
