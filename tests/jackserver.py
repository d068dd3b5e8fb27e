"""A private JACK server with a virtual microphone and speaker, for the streaming tests.

No sound card is needed: ``jackd -d dummy`` runs a real-time audio graph on the system clock.
Each :class:`JackServer` has a unique name, so concurrent test sessions never share a server;
processes under test get ``JACK_DEFAULT_SERVER=<name>`` in their environment and so their
PortAudio finds only that server.  PortAudio scans its host APIs when ``sounddevice`` is first
imported, so the code under test always runs as a *subprocess* started after the server is up.

The test's own JACK client (:class:`VirtualMicSpeaker`) is written with the ``JACK-Client``
package rather than as a second Python process using sounddevice, because:

* it plays into and records from the graph in the *same* process callback, so the played and
  the recorded signals share one sample clock and the measured delay is exact to the sample;
* it registers ports under names the test chooses and can (re)connect them itself, and it gets
  the server's xrun callback;
* it talks to libjack directly, so it does not care whether this pytest process imported
  sounddevice before the server started (PortAudio's host-API scan happens once per process);
* no inter-process plumbing is needed to hand a signal in and a recording back.

Timeline.  ``start(signal)`` takes effect at the start of the next JACK cycle: from that cycle
on the client writes ``signal`` to its output ports and records its input ports into a
preallocated buffer, sample for sample.  ``delay_of(...)`` then cross-correlates the recording
with the signal (a short chirp marker goes first so that there is one clear peak).

Ports made by PortAudio are called ``PortAudio[-NN]:in_K`` / ``out_K`` and are auto-connected to
``system:*`` when their stream starts; :meth:`VirtualMicSpeaker.route_from`/``route_to``
remove those connections and connect the virtual microphone/speaker instead.

Clean-up order (see :func:`jack_session`): processes under test first (their PortAudio
disconnects), then this client, then the server; finally leftover ``/dev/shm/jack*<name>*``
semaphores and segments are removed.  Every wait has a timeout.
"""
import contextlib
import glob
import itertools
import os
import shutil
import signal as _signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def restore_sigint():
    """``preexec_fn`` for children that stand for a command typed in a terminal: a shell
    without job control starts background jobs (CI runners, ``cmd &``) with SIGINT ignored and
    children inherit that, so the test resets SIGINT to its default before exec."""
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]

# The recording the end-to-end tests feed into the virtual microphone (a CC0 clip shipped with
# the package); the one place to change it.
TEST_CLIP = REPO_ROOT / "pacodec" / "data" / "piano.flac"

RATE = 48000
PERIOD = 256

_counter = itertools.count()


def jack_available():
    """(True, "") if jackd and the JACK-Client package are usable, else (False, why)."""
    for tool in ("jackd", "jack_wait"):
        if shutil.which(tool) is None:
            return False, f"{tool} not found (apt-get install jackd2 libportaudio2)"
    try:
        import jack  # noqa: F401
    except Exception as exc:  # ImportError, or OSError when libjack is missing
        return False, f"JACK-Client unusable: {exc}"
    return True, ""


_REALTIME = None


def realtime_allowed():
    """Whether this user may use SCHED_FIFO (root, or an rtprio limit): asked once, of a
    throwaway ``chrt`` process."""
    global _REALTIME
    if _REALTIME is None:
        try:
            _REALTIME = subprocess.run(["chrt", "-f", "10", "true"], capture_output=True,
                                       timeout=10).returncode == 0
        except (OSError, subprocess.SubprocessError):
            _REALTIME = False
    return _REALTIME


class JackServer:
    """``jackd -R -P 70 -n NAME -d dummy -r RATE -p PERIOD`` with a unique NAME, as an audio
    server runs: real-time scheduling for its cycle and, through libjack, its clients' process
    threads (the test's virtual microphone/speaker and PortAudio's).  Without it, two busy
    processes on a 2-core machine caused hundreds of xruns in 6 s and the send/receive test's
    median block correlation fell below its floor (0.55); with it, 0-6 xruns and 0.999.  Where
    SCHED_FIFO is not allowed: ``--no-realtime``."""

    def __init__(self, rate=RATE, period=PERIOD, name=None, log_dir=None):
        self.rate = int(rate)
        self.period = int(period)
        self.name = name or f"pcdtest{os.getpid()}x{next(_counter)}"
        self.log_path = Path(log_dir or "/tmp") / f"jackd-{self.name}.log"
        self.proc = None

    @property
    def env(self):
        """Environment for processes that must use this server."""
        env = dict(os.environ)
        env["JACK_DEFAULT_SERVER"] = self.name
        env["JACK_NO_AUDIO_RESERVATION"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        return env

    def start(self, timeout=10.0):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["jackd", *(["-R", "-P", "70"] if realtime_allowed() else ["--no-realtime"]),
             "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                out = subprocess.run(["jack_wait", "-c", "-s", self.name], env=self.env,
                                     capture_output=True, text=True, timeout=5).stdout
            except subprocess.TimeoutExpired:
                out = ""
            if "running" in out and "not running" not in out:
                return self
            time.sleep(0.05)
        log = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"jackd {self.name} did not start within {timeout}s:\n{log}")

    def stop(self, timeout=5.0):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(_signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None
        for leftover in glob.glob(f"/dev/shm/jack*_{self.name}_*"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class VirtualMicSpeaker:
    """The test's JACK client: ``mic_K`` output ports (what the code under test hears) and
    ``spk_K`` input ports (what it plays), sample-synchronous playback and recording."""

    def __init__(self, server, channels=2, max_seconds=60.0, name="pcdtest"):
        import jack
        self._jack = jack
        self.server = server
        self.client = jack.Client(name, servername=server.name, no_start_server=True)
        self.channels = int(channels)
        self.blocksize = self.client.blocksize
        self.samplerate = self.client.samplerate
        self.mics = [self.client.outports.register(f"mic_{k}") for k in range(self.channels)]
        self.speakers = [self.client.inports.register(f"spk_{k}") for k in range(self.channels)]
        self._rec = np.zeros((int(max_seconds * self.samplerate), self.channels), np.float32)
        self._signal = None
        self._pending = None
        self._pos = 0             # samples played/recorded since start()
        self._stop_rec = False
        self.xruns = 0
        self._xruns_at_start = 0
        self.cycles = 0
        self.started_at_frame = None
        self._done = threading.Event()
        self.client.set_process_callback(self._process)
        self.client.set_xrun_callback(self._xrun)
        self.client.activate()

    # -- JACK thread ---------------------------------------------------------------------
    def _xrun(self, delay_usecs):
        self.xruns += 1

    def _process(self, frames):
        self.cycles += 1
        if self._pending is not None:
            self._signal, self._pending = self._pending, None
            self._pos = 0
            self.started_at_frame = self.client.last_frame_time
            self._xruns_at_start = self.xruns
            self._done.clear()
        sig = self._signal
        pos = self._pos
        for k, port in enumerate(self.mics):
            buf = port.get_array()
            if sig is None or pos >= len(sig):
                buf[:] = 0.0
            else:
                n = min(frames, len(sig) - pos)
                buf[:n] = sig[pos:pos + n, k]
                buf[n:] = 0.0
        if sig is not None and pos < len(self._rec) and not self._stop_rec:
            n = min(frames, len(self._rec) - pos)
            for k, port in enumerate(self.speakers):
                self._rec[pos:pos + n, k] = port.get_array()[:n]
            self._pos = pos + n
            if self._pos >= len(self._rec):
                self._done.set()
        if sig is not None and self._pos >= len(sig):
            self._done.set()

    # -- test thread ---------------------------------------------------------------------
    @property
    def xruns_since_start(self):
        """Xruns the server reported since the signal started."""
        return self.xruns - self._xruns_at_start

    def start(self, signal):
        """Play ``signal`` ((n, channels) float32) from the next cycle on, and record."""
        signal = np.ascontiguousarray(signal, dtype=np.float32)
        if signal.ndim == 1:
            signal = np.repeat(signal[:, None], self.channels, axis=1)
        self._stop_rec = False
        self._pending = signal

    def wait_played(self, timeout):
        """Wait until the signal has been written out entirely; False on timeout."""
        return self._done.wait(timeout)

    def record_more(self, seconds, timeout=None):
        """Keep recording ``seconds`` more (tails of delayed output), with a timeout."""
        target = self._pos + int(seconds * self.samplerate)
        deadline = time.monotonic() + (timeout if timeout is not None else seconds + 5.0)
        while self._pos < min(target, len(self._rec)) and time.monotonic() < deadline:
            time.sleep(0.02)

    def recording(self):
        self._stop_rec = True
        return self._rec[:self._pos].copy()

    def ports_of_others(self, pattern="PortAudio"):
        return [p.name for p in self.client.get_ports(pattern)]

    def wait_for_ports(self, predicate, timeout=20.0, proc=None):
        """Poll until ``predicate(list_of_port_names)`` returns a true value; return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            names = [p.name for p in self.client.get_ports()]
            got = predicate(names)
            if got:
                return got
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before its ports "
                                   f"appeared")
            time.sleep(0.02)
        raise TimeoutError(f"ports did not appear within {timeout}s; have "
                           f"{[p.name for p in self.client.get_ports()]}")

    def _isolate(self, port_name):
        port = self.client.get_port_by_name(port_name)
        for other in self.client.get_all_connections(port):
            with contextlib.suppress(self._jack.JackError):
                if port.is_input:
                    self.client.disconnect(other, port)
                else:
                    self.client.disconnect(port, other)

    def route_to(self, input_ports):
        """Connect mic_K -> input_ports[K] (the code under test's inputs), alone."""
        for k, name in enumerate(input_ports):
            self._isolate(name)
            self.client.connect(self.mics[k % self.channels], name)

    def route_from(self, output_ports):
        """Connect output_ports[K] -> spk_K (the code under test's outputs), alone."""
        for k, name in enumerate(output_ports):
            self._isolate(name)
            self.client.connect(name, self.speakers[k % self.channels])

    def close(self):
        with contextlib.suppress(Exception):
            self.client.deactivate()
        with contextlib.suppress(Exception):
            self.client.close()


def portaudio_ports(names, kind, exclude=(), count=2):
    """PortAudio's ``in_K`` (kind="in") or ``out_K`` (kind="out") ports not in ``exclude``,
    grouped by client; returns the first client's ports sorted once it has ``count`` of them
    (PortAudio registers a stream's ports one by one: routing the first alone, on a loaded
    machine, left a channel silent), or [] until then."""
    groups = {}
    for n in names:
        client, _, port = n.partition(":")
        if client.startswith("PortAudio") and port.startswith(kind + "_") and n not in exclude:
            groups.setdefault(client, []).append(n)
    for client in sorted(groups):
        ports = sorted(groups[client], key=lambda p: int(p.rsplit("_", 1)[1]))
        return ports if len(ports) >= count else []
    return []


# ------------------------------------------------------------------------------ processes
class Proc:
    """A subprocess whose output goes to files, killed (by its own pid) when the block ends."""

    def __init__(self, args, env, log_dir, name):
        self.args = [str(a) for a in args]
        self.stdout_path = Path(log_dir) / f"{name}.out"
        self.stderr_path = Path(log_dir) / f"{name}.err"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.cpu_seconds = None
        self.popen = subprocess.Popen(self.args, env=env, stdin=subprocess.DEVNULL,
                                      stdout=self._out, stderr=self._err,
                                      start_new_session=True, preexec_fn=restore_sigint)

    def poll(self):
        if self.popen.returncode is None:
            self._reap(os.WNOHANG)
        return self.popen.returncode

    def _reap(self, flags):
        """waitpid with resource usage, so that the CPU time of the process is known."""
        try:
            pid, status, usage = os.wait4(self.popen.pid, flags)
        except ChildProcessError:
            return self.popen.poll()
        if pid == 0:
            return None
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        return self.popen.returncode

    @property
    def returncode(self):
        return self.popen.returncode

    def wait(self, timeout):
        """Wait for exit; on timeout interrupt it (SIGINT), then kill.  Returns the code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll() is not None:
                return self.popen.returncode
            time.sleep(0.02)
        self.stop()
        return None

    def stop(self, grace=30.0):
        if self.poll() is None:
            self.popen.send_signal(_signal.SIGINT)
            deadline = time.monotonic() + grace
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.poll() is None:
                self.popen.kill()
                self._reap(0)
        self._out.close()
        self._err.close()

    def wait_for_stderr(self, text, timeout):
        """Wait until ``text`` appears on the process's stderr (True), it exits or time runs
        out (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr():
                return True
            if self.poll() is not None:
                return text in self.stderr()
            time.sleep(0.02)
        return False

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def pacodec_cmd(*args):
    """Command line running the pacodec CLI in a fresh interpreter: ``python -m pacodec`` once
    the main CLI has the streaming commands wired in, else the stream CLI on its own."""
    main_cli = REPO_ROOT / "pacodec" / "cli.py"
    wired = ((REPO_ROOT / "pacodec" / "__main__.py").exists() and main_cli.exists()
             and "add_subparsers" in main_cli.read_text(errors="replace"))
    module = "pacodec" if wired else "pacodec.stream.cli"
    return [sys.executable, "-m", module, *map(str, args)]


# ------------------------------------------------------------------------------ signals
def chirp_marker(rate=RATE, seconds=0.05, f0=400.0, f1=6000.0, amplitude=0.5):
    """A short Hann-windowed linear chirp: one sharp cross-correlation peak."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return (amplitude * np.hanning(len(t)) * np.sin(phase)).astype(np.float32)


def load_clip(path=TEST_CLIP, rate=RATE, seconds=3.0, channels=2):
    """The first ``seconds`` of a recording, resampled to ``rate``, as (n, channels) float32."""
    import soundfile as sf
    from scipy.signal import resample_poly
    data, sr = sf.read(str(path), dtype="float32", always_2d=True, frames=int(seconds * 48000))
    data = data[:int(seconds * sr)]
    if sr != rate:
        from math import gcd
        g = gcd(int(sr), int(rate))
        data = resample_poly(data, rate // g, sr // g, axis=0).astype(np.float32)
    if data.shape[1] < channels:
        data = np.repeat(data[:, :1], channels, axis=1)
    data = data[:, :channels]
    peak = float(np.max(np.abs(data))) or 1.0
    return (0.7 * data / peak).astype(np.float32)


def make_test_signal(clip, rate=RATE, lead_in=0.2, gap=0.15, tail=0.3):
    """silence, marker, silence, clip, silence, marker, silence -> (signal, clip_offset).

    The second marker (``gap`` after the clip) measures the delay again at the end, after
    the code under test has had time to adapt its buffers."""
    ch = clip.shape[1]
    marker = np.repeat(chirp_marker(rate)[:, None], ch, axis=1)
    silence = lambda s: np.zeros((int(s * rate), ch), np.float32)  # noqa: E731
    parts = [silence(lead_in), marker, silence(gap)]
    offset = sum(len(p) for p in parts)
    parts += [clip, silence(gap), marker, silence(tail)]
    return np.concatenate(parts), offset


def end_marker_position(clip_len, offset, rate=RATE, gap=0.15):
    """Where :func:`make_test_signal` put the second marker."""
    return offset + clip_len + int(gap * rate)


# ------------------------------------------------------------------------------ analysis
def delay_of(recorded, played, max_delay=None):
    """Lag (samples) at which ``recorded`` best matches ``played``, and the peak's
    normalised correlation (1.0 for an exact copy)."""
    from scipy.signal import correlate
    r = recorded.mean(axis=1) if recorded.ndim == 2 else recorded
    p = played.mean(axis=1) if played.ndim == 2 else played
    if len(r) < len(p) or not len(p):
        return None, 0.0
    if max_delay is None:
        max_delay = len(r) - 1
    c = correlate(r, p, mode="full", method="fft")[len(p) - 1:len(p) + max_delay]
    if len(c) == 0:
        return None, 0.0
    lag = int(np.argmax(c))
    seg = r[lag:lag + len(p)]
    denom = float(np.sqrt(np.dot(p[:len(seg)], p[:len(seg)]) * np.dot(seg, seg))) or 1.0
    return lag, float(c[lag]) / denom


def marker_delay(recorded, rate=RATE, lead_in=0.2):
    """Delay (samples, may be negative) of the *first* chirp marker inside ``recorded``
    relative to where :func:`make_test_signal` put it (``lead_in`` seconds in), and the
    normalised correlation there."""
    from scipy.signal import correlate
    marker = chirp_marker(rate)
    r = recorded.mean(axis=1) if recorded.ndim == 2 else recorded
    if len(r) < len(marker):
        return None, 0.0
    c = correlate(r, marker, mode="valid", method="fft")
    e = np.concatenate([[0.0], np.cumsum(r.astype(np.float64) ** 2)])
    n = len(marker)
    em = float(np.dot(marker, marker))
    window = e[n:] - e[:-n]
    # (near-)silent stretches carry only FFT round-off: they must not score
    norm = np.where(window > 1e-3 * em, c / np.sqrt(np.maximum(window, 1e-30) * em), 0.0)
    best = float(norm.max())
    if best <= 0:
        return None, 0.0
    # the first peak that is a clear match: a marker damaged by a dropped period (a loaded
    # machine) still scores well above 0.5, and must not lose to the clean end marker
    pos = int(np.flatnonzero(norm >= min(0.9 * best, 0.5))[0])
    # refine to the local maximum of that first peak
    pos += int(np.argmax(norm[pos:pos + n]))
    return pos - int(lead_in * rate), float(norm[pos])


def snr_db(reference, test):
    """SNR of ``test`` against ``reference`` after the best scalar gain."""
    ref = reference.astype(np.float64).ravel()
    tst = test.astype(np.float64).ravel()
    g = np.dot(ref, tst) / (np.dot(tst, tst) or 1.0)
    noise = ref - g * tst
    return float(10 * np.log10((np.dot(ref, ref) + 1e-20) / (np.dot(noise, noise) + 1e-20)))


def _best_normalised_lag(window, r):
    """Lag of ``r`` inside ``window`` maximising the *normalised* correlation (a raw
    correlation peak would prefer a louder, merely similar stretch of a decaying tone)."""
    from scipy.signal import correlate
    n = len(r)
    c = correlate(window, r, mode="valid", method="fft")
    e = np.concatenate([[0.0], np.cumsum(window.astype(np.float64) ** 2)])
    energy = e[n:] - e[:-n]
    er = float(np.dot(r, r))
    score = np.where(energy > 1e-3 * er, c / np.sqrt(np.maximum(energy, 1e-30)), 0.0)
    return int(np.argmax(score))


def segmental_quality(reference, recorded, start, rate=RATE, block=0.1, search=0.06):
    """Align each ``block``-second block of ``reference`` inside ``recorded`` (starting near
    ``start``, re-searching ``search`` seconds either side so that an adaptive buffer may
    shift the delay) and return per-block SNR (dB) and correlation arrays, for blocks that
    carry signal."""
    n = int(block * rate)
    s = int(search * rate)
    ref = reference.mean(axis=1) if reference.ndim == 2 else reference
    rec = recorded.mean(axis=1) if recorded.ndim == 2 else recorded
    snrs, cors = [], []
    offset = start
    loudness = float(np.sqrt(np.mean(ref ** 2))) or 1.0
    for b in range(0, len(ref) - n + 1, n):
        r = ref[b:b + n]
        if np.sqrt(np.mean(r ** 2)) < 0.05 * loudness:
            continue
        lo = max(0, offset + b - s)
        window = rec[lo:offset + b + n + s]
        if len(window) < n:
            break
        lag = _best_normalised_lag(window, r)
        seg = window[lag:lag + n]
        offset = lo + lag - b          # follow the delay as it drifts
        denom = float(np.sqrt(np.dot(r, r) * np.dot(seg, seg))) or 1.0
        cors.append(float(np.dot(r, seg)) / denom)
        snrs.append(snr_db(r, seg))
    return np.array(snrs), np.array(cors)


@contextlib.contextmanager
def jack_session(tmp_path, channels=2, max_seconds=60.0, rate=RATE, period=PERIOD):
    """Yield ``(server, client)``; tears down in the right order whatever happens."""
    server = JackServer(rate=rate, period=period, log_dir=tmp_path).start()
    client = None
    try:
        client = VirtualMicSpeaker(server, channels=channels, max_seconds=max_seconds)
        yield server, client
    finally:
        if client is not None:
            client.close()
        server.stop()


# ------------------------------------------------------------------------------ scenarios
# Each runs pacodec as processes against a private JACK server and returns a dict of
# measurements; the tests assert on some of them and tools/latency.py prints them.

def free_udp_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_json(path):
    import json
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def align(recorded, reference):
    """Signed lag (samples) of ``reference`` inside ``recorded`` by full cross-correlation
    (negative when the recording starts after the reference does)."""
    from scipy.signal import correlate
    r = recorded.mean(axis=1) if recorded.ndim == 2 else recorded
    p = reference.mean(axis=1) if reference.ndim == 2 else reference
    c = correlate(r, p, mode="full", method="fft")
    return int(np.argmax(c)) - (len(p) - 1)


def _analyse(rec, clip, offset, lead_in, rate=RATE):
    lag, peak = marker_delay(rec, rate=rate, lead_in=lead_in)
    if peak < 0.5:
        # the marker did not make it (e.g. the receiver joined after it): align on the clip
        lag = align(rec, clip) - offset
    out = {"delay_samples": lag, "marker_peak": round(peak, 4),
           "latency_ms": None if lag is None else round(1000.0 * lag / rate, 2)}
    # the end marker, searched for from the clip's end on
    end = end_marker_position(len(clip), offset, rate)
    if lag is not None:
        lo = max(0, end + lag - int(0.3 * rate))
        pos, peak2 = marker_delay(rec[lo:], rate=rate, lead_in=0.0)
        if pos is not None and peak2 > 0.5:
            out["end_latency_ms"] = round(1000.0 * (lo + pos - end) / rate, 2)
            out["end_marker_peak"] = round(peak2, 4)
    if lag is not None and offset + lag >= 0:
        snrs, cors = segmental_quality(clip, rec, offset + lag, rate=rate)
        if len(cors):
            out.update(blocks=len(cors), snr_median_db=round(float(np.median(snrs)), 2),
                       cor_median=round(float(np.median(cors)), 4),
                       good_fraction=round(float(np.mean(cors > 0.5)), 3))
        tail = rec[offset + lag + len(clip) - int(0.5 * rate):offset + lag + len(clip)]
        out["tail_rms"] = round(float(np.sqrt(np.mean(tail ** 2))) if len(tail) else 0.0, 5)
    return out


def _mode_args(low_delay):
    """`live`/`send` code in low-delay mode by default: None gives no option, True
    ``--low-delay``, False ``--normal-delay``."""
    return [] if low_delay is None else ["--low-delay" if low_delay else "--normal-delay"]


def run_live(tmp_path, *, low_delay=False, bitrate=128, seconds=3.0, clip_path=TEST_CLIP,
             startup_timeout=180.0, period=PERIOD, extra_args=()):
    """mic -> `pacodec live` -> speaker; returns latency, quality, xruns and pacodec's stats.
    ``low_delay``: see :func:`_mode_args`; ``period``: the JACK server's period (frames)."""
    clip = load_clip(clip_path, seconds=seconds)
    signal, offset = make_test_signal(clip)
    stats_path = Path(tmp_path) / f"live{'-ld' if low_delay in (True, None) else ''}.json"
    args = ["live", "-b", bitrate, "-r", RATE, "-c", 2, "--duration", startup_timeout + 60,
            "--stats-json", stats_path, *_mode_args(low_delay), *extra_args]
    with jack_session(tmp_path, max_seconds=seconds + 10, period=period) as (server, client):
        with Proc(pacodec_cmd(*args), server.env, tmp_path, stats_path.stem) as proc:
            ins = client.wait_for_ports(lambda n: portaudio_ports(n, "in"),
                                        timeout=startup_timeout, proc=proc)
            outs = client.wait_for_ports(lambda n: portaudio_ports(n, "out"), timeout=10,
                                         proc=proc)
            client.route_to(ins)
            client.route_from(outs)
            time.sleep(0.3)
            client.start(signal)
            played = client.wait_played(timeout=len(signal) / RATE + 30)
            client.record_more(0.5)
            rec = client.recording()
            proc.stop()
            xruns = client.xruns_since_start
        result = {"played": played, "xruns": xruns, "exit": proc.returncode,
                  "cpu_seconds": proc.cpu_seconds,
                  "stderr": proc.stderr()[-2000:], "stats": _read_json(stats_path)}
    result.update(_analyse(rec, clip, offset, 0.2))
    return result


def run_send_receive(tmp_path, *, low_delay=False, bitrate=128, seconds=3.0,
                     clip_path=TEST_CLIP, source="mic", loss=0.0, reorder=0.0, seed=1,
                     receiver_output="device", startup_timeout=180.0, period=PERIOD,
                     tx_extra=(), rx_extra=()):
    """`pacodec send` -> [LossyRelay] -> `pacodec receive` on 127.0.0.1.

    ``source="mic"``: the signal is played into the sender's JACK input; ``"file"``: the
    sender streams a WAV of the same signal with ``--file``.  ``receiver_output="device"``
    records the receiver's JACK output; ``"wav"`` lets it write ``-o`` (no JACK needed when
    the source is a file as well).  Returns latency, quality, counters of both processes and
    of the relay."""
    import soundfile as sf
    from pacodec.stream.packet import unpack as unpack_packet
    from pacodec.stream.relay import LossyRelay

    tmp_path = Path(tmp_path)
    lead_in = 0.2 if source == "mic" else 1.0
    clip = load_clip(clip_path, seconds=seconds)
    signal, offset = make_test_signal(clip, lead_in=lead_in)
    port = free_udp_port()
    tag = f"sr-{source}-{receiver_output}-{int(loss * 100)}"
    rx_stats, tx_stats = tmp_path / f"{tag}-rx.json", tmp_path / f"{tag}-tx.json"
    wav_in, wav_out = tmp_path / f"{tag}-in.wav", tmp_path / f"{tag}-out.wav"
    sf.write(str(wav_in), signal, RATE, subtype="FLOAT")
    relay = None
    dest = port
    if loss or reorder:
        relay = LossyRelay(("127.0.0.1", port), loss=loss, reorder=reorder, reorder_depth=2,
                           seed=seed, seq_of=lambda d: unpack_packet(d).seq,
                           duration=startup_timeout + 120).start()
        dest = relay.address[1]
    rx_args = ["receive", "--port", port, "--bind", "127.0.0.1", "--stats-json", rx_stats,
               "--duration", startup_timeout + 120, "--idle-exit", 1.5]
    if receiver_output == "wav":
        rx_args += ["-o", wav_out]
    rx_args += list(rx_extra)
    tx_args = ["send", "--to", f"127.0.0.1:{dest}", "-b", bitrate, "--stats-json", tx_stats,
               "--duration", startup_timeout + 120, *_mode_args(low_delay), *tx_extra]
    if source == "file":
        tx_args += ["--file", wav_in]
    else:
        tx_args += ["-r", RATE, "-c", 2]
    need_jack = source == "mic" or receiver_output == "device"
    result = {}
    try:
        with contextlib.ExitStack() as stack:
            if need_jack:
                server, client = stack.enter_context(
                    jack_session(tmp_path, max_seconds=seconds + lead_in + 30, period=period))
                env = server.env
            else:
                env = dict(JackServer(log_dir=tmp_path).env)
                client = None
            rx = stack.enter_context(Proc(pacodec_cmd(*rx_args), env, tmp_path, tag + "-rx"))
            # the receiver's first status line says it listens (its codec is warm): a sender
            # started earlier would have its first packets piled up and skipped as backlog
            rx.wait_for_stderr("waiting for a stream", timeout=startup_timeout)
            if client is not None and source == "file":
                # record everything from before the first packet on
                client.start(np.zeros((int((seconds + lead_in + 20) * RATE), 2), np.float32))
            tx = stack.enter_context(Proc(pacodec_cmd(*tx_args), env, tmp_path, tag + "-tx"))
            if source == "mic":
                ins = client.wait_for_ports(lambda n: portaudio_ports(n, "in"),
                                            timeout=startup_timeout, proc=tx)
                client.route_to(ins)
            if receiver_output == "device":
                outs = client.wait_for_ports(lambda n: portaudio_ports(n, "out"),
                                             timeout=startup_timeout, proc=rx)
                client.route_from(outs)
            if source == "mic":
                time.sleep(0.3)
                client.start(signal)
                client.wait_played(timeout=len(signal) / RATE + 30)
                client.record_more(0.5)
                tx.stop()
            else:
                tx.wait(timeout=startup_timeout + len(signal) / RATE + 30)
            rx.wait(timeout=30)          # --idle-exit ends it once packets stop
            if client is not None:
                rec = client.recording()
                result["xruns"] = client.xruns_since_start
            else:
                rec = sf.read(str(wav_out), dtype="float32", always_2d=True)[0]
            tx.stop()
            rx.stop()
            result.update(tx_exit=tx.returncode, rx_exit=rx.returncode,
                          tx_cpu_seconds=tx.cpu_seconds, rx_cpu_seconds=rx.cpu_seconds,
                          tx_stderr=tx.stderr()[-1500:], rx_stderr=rx.stderr()[-1500:])
    finally:
        if relay is not None:
            relay.stop()
    result["rx"] = _read_json(rx_stats)
    result["tx"] = _read_json(tx_stats)
    if relay is not None:
        result["relay"] = {"received": relay.received, "dropped": relay.dropped,
                           "reordered": relay.reordered, "dropped_seqs": relay.dropped_seqs,
                           "reordered_seqs": relay.reordered_seqs}
    result.update(_analyse(rec, clip, offset, lead_in))
    if source == "file":
        # the delay of a file source includes the processes' start-up: not a latency
        for key in ("latency_ms", "end_latency_ms"):
            if key in result:
                result[key.replace("latency", "offset")] = result.pop(key)
    return result
