"""Shared helpers of the real-time pipelines: the lazy sounddevice import, codec warm-up,
device arguments, the in-place status line and the GIL switch interval."""
import contextlib
import json
import sys
import threading
import time


from ..errors import UnsupportedError
from .counters import Counted

__all__ = ["sounddevice", "parse_device", "warm_codec", "ungrouped", "StatusLine", "fast_switching",
           "AudioPipeline", "RunClock", "ctrl_c_stops", "stop_requested",
           "write_stats", "fmt_time", "playable_rate", "kbps"]


def sounddevice():
    """Import sounddevice on first use (encoding and decoding never need PortAudio)."""
    try:
        import sounddevice as sd
    except OSError as exc:   # the PortAudio library itself is missing
        raise UnsupportedError(
            f"audio devices need PortAudio ({exc}); install libportaudio2") from None
    except ImportError as exc:
        raise UnsupportedError(f"audio devices need the sounddevice package ({exc})") from None
    return sd


def ungrouped(enc):
    """A streaming encoder (``pacodec live``/``send``, from any encoder factory) sends every frame
    as soon as it is coded: no frame groups (FORMAT.md §4; packets carry none, §9)."""
    if getattr(enc, "group", 1) != 1:
        enc.group = 1
    return enc


def parse_device(text):
    """``None``/``""`` -> default; ``"3"`` -> 3; ``"IN,OUT"`` -> pair; else a name substring."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, tuple, list)):
        return text
    parts = [p.strip() for p in str(text).split(",")]
    conv = [int(p) if p.lstrip("-").isdigit() else (p or None) for p in parts]
    if len(conv) == 1:
        return conv[0]
    if len(conv) == 2:
        return tuple(conv)
    raise UnsupportedError(f"bad --device {text!r}: give INDEX, NAME or IN,OUT")


def warm_codec(make_encoder=None, make_decoder=None, frames=8):
    """Run a throwaway encoder/decoder pair over a few frames so that every numba kernel is
    compiled (or loaded from cache) before an audio stream opens: quiet noise, a sudden loud
    burst (so that the short-block/transient paths run too) and a stereo-asymmetric tone."""
    import numpy as np
    enc = make_encoder() if make_encoder is not None else None
    dec = make_decoder() if make_decoder is not None else None
    if enc is None:
        return
    rng = np.random.default_rng(0)
    n, ch = enc.frame_size * frames, enc.channels
    x = 1e-3 * rng.standard_normal((n, ch))
    third = n // 3
    x[third:third + enc.frame_size // 4] += 0.5 * rng.standard_normal((enc.frame_size // 4, ch))
    t = np.arange(n - 2 * third) / 48000.0
    for c in range(ch):
        x[2 * third:, c] += 0.2 * np.sin(2 * np.pi * (440.0 * (c + 1)) * t)
    x = x.astype(np.float32)
    packets = enc.encode(x) + enc.flush()
    if dec is not None:
        for p in packets:
            dec.decode_packet(p)
        dec.decode_packet(None)


_STOP = threading.Event()


def stop_requested() -> bool:
    """True once Ctrl-C was pressed inside :func:`ctrl_c_stops`: the pipelines' ``run`` loops
    check it and stop as they do at the end of their duration."""
    return _STOP.is_set()


@contextlib.contextmanager
def ctrl_c_stops():
    """While a streaming command runs, Ctrl-C (SIGINT) is also remembered, so that a
    KeyboardInterrupt that Python drops still stops the command.  Ctrl-C raises wherever the
    main thread is, and during start-up that is often inside numba/llvmlite code that C calls
    back into: an exception there is printed as "Exception ignored on calling ctypes callback"
    and lost, and the command went on running.  Now its ``run`` loop sees :func:`stop_requested`
    and stops (within a quarter of a second, or once start-up is over), and such a dropped
    KeyboardInterrupt is not printed.  Applies only in the main thread and while SIGINT has
    Python's default handler."""
    import signal
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return

    def remember_and_raise(signum, frame):
        _STOP.set()
        raise KeyboardInterrupt

    previous_hook = sys.unraisablehook

    def quiet_dropped_interrupt(unraisable):
        if not (_STOP.is_set() and isinstance(unraisable.exc_value, KeyboardInterrupt)):
            previous_hook(unraisable)

    _STOP.clear()
    old = signal.signal(signal.SIGINT, remember_and_raise)
    sys.unraisablehook = quiet_dropped_interrupt
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        sys.unraisablehook = previous_hook
        _STOP.clear()


class RunClock:
    """The clock of a streaming command's ``run`` loop: it runs until ``duration`` seconds have
    passed (never, for None) or Ctrl-C was pressed (:func:`stop_requested`), and waits at most
    ``tick`` seconds between status updates."""

    def __init__(self, duration, tick=0.25):
        self.deadline = None if duration is None else time.monotonic() + duration
        self.tick = tick

    def running(self) -> bool:
        return ((self.deadline is None or time.monotonic() < self.deadline)
                and not stop_requested())

    def wait(self) -> float:
        """How long to wait before the next status update."""
        if self.deadline is None:
            return self.tick
        return max(0.0, min(self.tick, self.deadline - time.monotonic()))


class StatusLine:
    """One status line on stderr, rewritten in place on a terminal (``\\r`` + erase), or
    printed at most once every ``interval`` seconds when stderr is a file or pipe."""

    def __init__(self, stream=None, interval=1.0, enabled=True):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.enabled = enabled
        self._last = -1e9
        self._shown = False

    def update(self, text, force=False):
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + text + "\x1b[K")
            self.stream.flush()
            self._shown = True
        elif force or now - self._last >= self.interval:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def finish(self, text=None):
        if not self.enabled:
            return
        if text is not None:
            self.update(text, force=True)
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def fast_switching(interval=0.001):
    """Shorten CPython's GIL switch interval (default 5 ms, about one audio period) while
    real-time streams run, so the audio callback thread gets the GIL back quickly from the
    codec thread.  Process-wide: restored on exit."""
    old = sys.getswitchinterval()
    if interval is not None:
        sys.setswitchinterval(min(old, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class AudioPipeline(Counted):
    """What the streaming objects share: the lifecycle (a context manager around
    ``start``/``stop``), closing the sounddevice stream, holding the short GIL switch interval
    while it runs, the caller's :meth:`run` loop and the common entries of ``stats()``.

    A subclass gives ``start``, ``stop``, ``stats`` and ``status_text``, sets
    ``switch_interval`` and (once :meth:`start` has run) ``started_at``, lists its counters in
    ``COUNTERS`` (:class:`~.counters.Counted`), and says when it has ended by itself: sets
    ``_end_event`` (a ``threading.Event``, set by its own thread when the work is done) or
    overrides :attr:`finished`.  Its threads store what they raise in ``error``.
    """

    _stream = None          # the sounddevice stream while it is open
    _switch = None          # the held fast_switching context
    _end_event = None       # threading.Event set when the pipeline ended by itself, or None
    started_at = None       # time.monotonic() when start() ran
    error = None            # what a pipeline thread raised
    codec_seconds = 0.0     # time spent encoding/decoding

    @property
    def started(self) -> bool:
        return self.started_at is not None

    @property
    def finished(self) -> bool:
        """True once the pipeline ended by itself (file sent or played, idle, an error)."""
        return self._end_event is not None and self._end_event.is_set()

    def _pause(self, seconds):
        """Wait between two status updates (returns early when the pipeline ends)."""
        if self._end_event is not None:
            self._end_event.wait(seconds)
        else:
            time.sleep(seconds)

    def run(self, duration=None, status=None):
        """Start (unless started), show the status line until ``duration`` seconds have passed,
        the pipeline has :attr:`finished` or Ctrl-C was pressed, then stop.  Raises what a
        pipeline thread raised; else returns :meth:`stats`.  A Ctrl-C during ``start`` stops
        the pipeline as one during the run does; an error in ``start`` is raised after
        ``stop`` (without a final status line)."""
        status = status or StatusLine()
        failed = False
        try:
            if not self.started:
                try:
                    self.start()
                except Exception:
                    failed = True
                    raise
            clock = RunClock(duration)
            while clock.running() and not self.finished:
                status.update(self.status_text())
                self._pause(clock.wait())
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            status.finish(None if failed else self.status_text())
        if self.error is not None:
            raise self.error
        return self.stats()

    def _elapsed(self) -> float:
        return time.monotonic() - self.started_at if self.started_at else 0.0

    def _common_stats(self, elapsed) -> dict:
        """``elapsed``, ``cpu_per_second`` (codec time per second) and ``error``."""
        return {"elapsed": round(elapsed, 3),
                "cpu_per_second": round(self.codec_seconds / elapsed, 4) if elapsed > 0 else None,
                "error": self._error_text()}

    def _error_text(self):
        return None if self.error is None else repr(self.error)

    def _hold_fast_switching(self):
        self._switch = fast_switching(self.switch_interval)
        self._switch.__enter__()

    def _release_fast_switching(self):
        if self._switch is not None:
            self._switch.__exit__(None, None, None)
            self._switch = None

    def _stop_worker(self, timeout):
        """Stop the pipeline's codec thread (``_thread``): set ``_stop``, wake it through
        ``_wake`` and wait up to ``timeout`` seconds for it."""
        self._stop.set()
        self._wake.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _close_stream(self):
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def kbps(nbytes, seconds) -> float:
    """kbit/s of ``nbytes`` over ``seconds`` (0.0 for no time), rounded as stats show it."""
    return round(8.0 * nbytes / seconds / 1000.0, 2) if seconds > 0 else 0.0


def write_stats(path, stats):
    if path:
        with open(path, "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True, default=float)


def fmt_time(seconds):
    seconds = max(0.0, float(seconds))
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}:{s:04.1f}"


def playable_rate(sd, device, samplerate, channels):
    """``samplerate`` if the output device accepts it, else the device's default rate (the
    caller then resamples with :class:`~.resample.StreamResampler`)."""
    try:
        sd.check_output_settings(device=device, samplerate=samplerate, channels=channels,
                                 dtype="float32")
        return int(samplerate)
    except Exception:
        info = sd.query_devices(device, "output")
        return int(info["default_samplerate"])
