"""The ``pacodec`` command line: encode, decode, info, demo (and the streaming commands).

Only the public API is used.  ``--help`` and ``--version`` import nothing heavy (numba, numpy and
soundfile load when a command runs).  Every error is one line on stderr with a non-zero exit code;
outputs are written atomically and never overwrite an existing file without ``--force``.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .config import DEFAULT_BITRATE, DEFAULT_MU, DEFAULT_QUANTIZER
from .errors import PacodecError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPT = 130


class CliError(Exception):
    pass


class Terminated(KeyboardInterrupt):
    """Raised by the SIGTERM/SIGHUP handler so that ``finally`` blocks and ``atomic_output``
    remove partial outputs exactly as for Ctrl-C."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


def _install_signal_handlers() -> dict:
    """Make SIGTERM/SIGHUP (if not handled already) raise :class:`Terminated`; returns the
    previous handlers for :func:`_restore_signal_handlers`."""
    import signal
    old = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            old[sig] = signal.signal(sig, _raise_terminated)
    return old


def _restore_signal_handlers(old: dict):
    import signal
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _derive(path: str, suffix: str) -> str:
    if path == "-":
        return "-"
    root, _ = os.path.splitext(path)
    return root + suffix


class _Progress:
    """A progress bar on stderr, shown only for long inputs on a terminal."""

    def __init__(self, total_seconds, label, quiet=False):
        self.on = (not quiet and total_seconds is not None and total_seconds > 20
                   and sys.stderr.isatty())
        self.total = total_seconds
        self.label = label

    def update(self, seconds):
        if self.on:
            frac = min(1.0, seconds / self.total)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}%")
            sys.stderr.flush()

    def done(self):
        if self.on:
            sys.stderr.write("\n")


def _open_input_audio(path):
    import io

    import soundfile as sf
    if path == "-":
        src = io.BytesIO(sys.stdin.buffer.read())
    else:
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        if os.path.isdir(path):
            raise CliError(f"{path} is a directory")
        with open(path, "rb"):         # a plain OSError (permission denied...), not libsndfile's
            pass
        src = path
    try:
        return sf.SoundFile(src)
    except (RuntimeError, sf.LibsndfileError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CliError(f"{path}: not a readable audio file ({msg})") from None


def cmd_encode(args):
    import numpy as np

    from .encoder import Encoder
    from .pacfile import atomic_output
    if args.input != "-" and os.path.splitext(args.input)[1].lower() == ".pac":
        raise CliError(f"{args.input} is already a pacodec file (did you mean 'pacodec decode'?)")
    out = args.output or _derive(args.input, ".pac")
    src = _open_input_audio(args.input)
    with src:
        total = src.frames if src.seekable() else None
        kwargs = dict(quantizer=args.quantizer, mu=args.mu, low_delay=args.low_delay,
                      window_shape=args.window)
        if args.quality is not None:
            kwargs["quality"] = args.quality
        elif args.distance is not None:
            kwargs["distance"] = args.distance
        elif args.abr is not None:
            kwargs.update(mode="abr", bitrate=args.abr)
        else:
            kwargs.update(mode="cbr", bitrate=args.bitrate if args.bitrate is not None else DEFAULT_BITRATE)
        enc = Encoder(src.samplerate, src.channels, total_frames=total, **kwargs)
        prog = _Progress(total / src.samplerate if total else None, "encoding", args.quiet)
        block = 1 << 16

        def run(fh):
            fh.write(enc.header())
            done = 0
            while True:
                x = src.read(block, dtype="float64", always_2d=True)
                if not len(x):
                    break
                for fr in enc.encode(x):
                    fh.write(fr)
                done += len(x)
                prog.update(done / src.samplerate)
            for fr in enc.flush():
                fh.write(fr)
            prog.done()
            return done

        if out == "-":
            done = run(sys.stdout.buffer)
            sys.stdout.buffer.flush()
        else:
            with _name_write_errors(out), atomic_output(
                    out, force=args.force, inputs=[args.input] if args.input != "-" else []) as fh:
                done = run(fh)
        if not args.quiet and out != "-":
            size = os.path.getsize(out)
            secs = done / src.samplerate
            rate = 8 * size / secs / 1000 if secs else 0.0
            print(f"{out}: {secs:.2f} s, {src.samplerate} Hz, {src.channels} ch, {size} bytes, "
                  f"{rate:.1f} kbit/s", file=sys.stderr)
    del np
    return 0


class _name_write_errors:
    """Give an ``OSError`` without a file name (a failed write: disk full, quota...) the output's."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, OSError) and not exc.filename:
            raise OSError(exc.errno, exc.strerror or str(exc), self.path) from None
        return False


class _WriteGuard:
    """File wrapper for libsndfile's virtual I/O: a failed write (disk full...) is remembered and
    re-raised as the ``OSError`` it was, instead of an exception ignored inside a C callback and an
    ``AssertionError`` from soundfile."""

    def __init__(self, fh):
        self._fh = fh
        self.error = None

    def write(self, data):
        if self.error is not None:
            return 0
        try:
            n = self._fh.write(data)
        except OSError as e:
            self.error = e
            return 0
        return len(data) if n is None else n

    def __getattr__(self, name):
        return getattr(self._fh, name)


def cmd_decode(args):
    import io

    import numpy as np
    import soundfile as sf

    from .pacfile import PacFile, atomic_output
    out = args.output or _derive(args.input, ".wav")
    if args.input != "-" and not os.path.exists(args.input):
        raise CliError(f"{args.input}: no such file")
    src = io.BytesIO(sys.stdin.buffer.read()) if args.input == "-" else args.input
    ext = os.path.splitext(out)[1].lower().lstrip(".") if out != "-" else "wav"
    fmt = {"wav": "WAV", "flac": "FLAC", "aiff": "AIFF", "aif": "AIFF", "ogg": "OGG"}.get(ext)
    if fmt is None:
        raise CliError(f"cannot write '.{ext}' files; use .wav, .flac, .aiff or .ogg")
    subtype = "FLOAT" if args.float else ("VORBIS" if fmt == "OGG" else "PCM_16")
    if fmt == "FLAC" and args.float:
        raise CliError("FLAC cannot hold float samples; drop --float or write .wav")
    import warnings
    with warnings.catch_warnings(record=True) as caught, PacFile(src, strict=args.strict) as f:
        warnings.simplefilter("always")

        def run(fh):
            guard = _WriteGuard(fh)
            try:
                with sf.SoundFile(guard, "w", samplerate=f.samplerate, channels=f.channels,
                                  format=fmt, subtype=subtype) as snd:
                    for b in f.blocks(1 << 16):
                        if subtype != "FLOAT":
                            b = np.clip(b, -1.0, 32767 / 32768)
                        snd.write(b)
            except Exception:
                if guard.error is not None:
                    raise guard.error from None
                raise
            if guard.error is not None:
                raise guard.error
        if out == "-":
            mem = io.BytesIO()
            run(mem)
            sys.stdout.buffer.write(mem.getvalue())
            sys.stdout.buffer.flush()
        else:
            with _name_write_errors(out), atomic_output(
                    out, force=args.force, inputs=[args.input] if args.input != "-" else []) as fh:
                run(fh)
        problems = f.problems
        for p in problems[:10]:
            print(f"pacodec: warning: {p}", file=sys.stderr)
        if len(problems) > 10:
            print(f"pacodec: warning: ... and {len(problems) - 10} more problems "
                  f"(see 'pacodec info')", file=sys.stderr)
    for w in caught:                   # one line each, not Python's two-line warning format
        msg = str(w.message)
        print(msg.replace("pacodec: ", "pacodec: warning: ", 1) if msg.startswith("pacodec: ")
              else f"pacodec: warning: {msg}", file=sys.stderr)
    return 0


def cmd_info(args):
    import json

    from .pacfile import info
    if not os.path.exists(args.input):
        raise CliError(f"{args.input}: no such file")
    i = info(args.input)
    if args.json:
        print(json.dumps(i.as_dict(), indent=2))
    else:
        dur = "unknown" if i.duration is None else f"{i.duration:.3f} s ({i.frames} samples)"
        print(f"{i.path}: pacodec stream")
        print(f"  sample rate   {i.samplerate} Hz, {i.channels} channel(s)")
        print(f"  duration      {dur}")
        print(f"  frames        {i.codec_frames} x {i.frame_size} samples "
              f"({'low-delay' if i.low_delay else 'normal'}, {i.window_shape} window)")
        q = i.quantizer + (f" (mu={i.mu})" if i.quantizer == "mulaw" else "")
        print(f"  quantizer     {q}")
        if i.bitrate_kbps is not None:
            print(f"  bitrate       {i.bitrate_kbps:.1f} kbit/s ({i.file_bytes} bytes)")
        if i.dcr is not None:
            print(f"  DCR           {100 * i.dcr:.2f} % smaller than 16-bit PCM")
        if i.problems:
            print("  problems:")
            for p in i.problems[:20]:
                print(f"    {p}")
            if len(i.problems) > 20:
                print(f"    ... and {len(i.problems) - 20} more (--json lists them all)")
        else:
            print("  integrity     all frames pass their CRC")
    return 1 if i.problems else 0


def cmd_demo(args):
    import tempfile
    import time
    from importlib import resources

    import numpy as np
    import soundfile as sf

    import pacodec
    clip = resources.files("pacodec").joinpath("data/piano.flac")
    with resources.as_file(clip) as path:
        x, fs = sf.read(path, always_2d=True)
    print(f"demo clip: piano.flac (CC0), {len(x) / fs:.2f} s, {fs} Hz, {x.shape[1]} ch")
    with tempfile.TemporaryDirectory() as tmp:
        pac = os.path.join(tmp, "piano.pac")
        t0 = time.perf_counter()
        pacodec.write(pac, x, fs, bitrate=args.bitrate)
        t1 = time.perf_counter()
        y, _ = pacodec.read(pac)
        t2 = time.perf_counter()
        size = os.path.getsize(pac)
    secs = len(x) / fs
    err = y.astype(np.float64) - x
    snr = 10 * np.log10(np.sum(x ** 2) / max(np.sum(err ** 2), 1e-20))
    print(f"encoded at {args.bitrate:g} kbit/s CBR: {size} bytes, actual {8 * size / secs / 1000:.1f} "
          f"kbit/s, {len(x) * x.shape[1] * 2 / size:.1f}x smaller than 16-bit PCM "
          f"(DCR {100 * (1 - size / (len(x) * x.shape[1] * 2)):.1f} %)")
    print(f"decoded: {len(y)} samples (input {len(x)}), exact length: {len(y) == len(x)}")
    print(f"encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s (first run includes numba compilation)")
    print(f"SNR {snr:.1f} dB (waveform; a perceptual codec is judged by ViSQOL, below)")
    try:
        from .quality import visqol
        print(f"ViSQOL (audio mode) {visqol(x, y, fs):.3f}  (max ~4.73)")
    except ImportError as e:
        print(f"ViSQOL: not installed ({e}); see README 'Measuring quality'")
    return 0 if len(y) == len(x) else 1


def cmd_gst_path(args):
    from . import gst
    if args.env:
        print(gst.shell_env(), end="")
    else:
        print(gst.plugin_path())
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="pacodec", description="pacodec perceptual audio codec")
    p.add_argument("--version", action="version", version=f"pacodec {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    e = sub.add_parser("encode", help="encode an audio file (WAV, FLAC, OGG, AIFF...) to .pac")
    e.add_argument("input", help="audio file, or - for stdin")
    e.add_argument("-o", "--output", help="output .pac (default: input name with .pac; - = stdout)")
    g = e.add_mutually_exclusive_group()
    g.add_argument("-b", "--bitrate", type=float, metavar="KBPS", help="CBR bitrate (default 128)")
    g.add_argument("--abr", type=float, metavar="KBPS", help="average bitrate")
    g.add_argument("-q", "--quality", type=float, metavar="Q", help="VBR quality 0..10 (10 best)")
    g.add_argument("-d", "--distance", type=float, metavar="D",
                   help="VBR perceptual distance (1.0 = noise at the masking threshold)")
    e.add_argument("--quantizer", choices=["uniform", "power", "mulaw"], default=DEFAULT_QUANTIZER,
                   help="quantizer (default uniform: best mean ViSQOL on the corpus, see README)")
    e.add_argument("--mu", type=int, default=DEFAULT_MU, help="mu-law parameter (default 255)")
    e.add_argument("--window", choices=["sine", "kbd"], default="sine", help="window slope shape")
    e.add_argument("--low-delay", action="store_true", help="8 ms frames for live use")
    e.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="decode a .pac file to WAV/FLAC")
    d.add_argument("input", help=".pac file, or - for stdin")
    d.add_argument("-o", "--output", help="output file (default: input name with .wav; - = stdout)")
    d.add_argument("--float", action="store_true", help="write 32-bit float WAV (no clipping)")
    d.add_argument("--strict", action="store_true", help="fail on damaged frames instead of concealing")
    d.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("info", help="describe a .pac file and check its integrity")
    i.add_argument("input")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("demo", help="encode and decode the shipped clip and report quality")
    m.add_argument("-b", "--bitrate", type=float, default=128.0)
    m.set_defaults(func=cmd_demo)

    gp = sub.add_parser("gst-path", help="print the GStreamer plugin directory of the pacodec elements")
    gp.add_argument("--env", action="store_true",
                    help="print export lines for GST_PLUGIN_PATH and PYTHONPATH instead")
    gp.set_defaults(func=cmd_gst_path)

    try:
        from .stream import cli as stream_cli
    except ImportError:
        stream_cli = None
    if stream_cli is not None and hasattr(stream_cli, "add_subparsers"):
        stream_cli.add_subparsers(sub)
    return p


def threading_is_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    saved = _install_signal_handlers() if threading_is_main() else {}
    try:
        return args.func(args) or 0
    except Terminated as e:
        print("pacodec: terminated", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("pacodec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except (CliError, PacodecError) as e:
        print(f"pacodec: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"pacodec: error: {where}{e.strerror or e}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print("pacodec: error: out of memory", file=sys.stderr)
        return EXIT_ERROR
    finally:
        _restore_signal_handlers(saved)


if __name__ == "__main__":
    sys.exit(main())
