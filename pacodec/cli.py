"""The ``pacodec`` command line: encode, decode, info, demo (and the streaming commands).

Only the public API is used.  ``--help`` and ``--version`` import nothing heavy (numba, numpy and
soundfile load when a command runs).  Every error is one line on stderr with a non-zero exit code;
outputs are written atomically and never overwrite an existing file without ``--force``.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import __version__, options
from ._audioin import open_input_audio, refuse_terminal_input, sniff_audio
from ._frontend import CliError, coding_options_for, output_name, seconds_progress, warn
from .errors import PacodecError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPT = 130


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


def _refuse_terminal(force: bool):
    """Like gzip: binary data is not written to a terminal unless forced."""
    if not force and sys.stdout.isatty():
        raise CliError("refusing to write binary data to a terminal; redirect it (> FILE) or "
                       "pipe it, or use -f to force")


def _wav_trailing_audio(path, block_align) -> int:
    """Bytes after a WAV file's ``data`` chunk that are not RIFF chunks: audio the header does
    not count (a header that claims fewer frames than the file holds).  0 if none."""
    import struct
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if fh.read(12)[8:12] != b"WAVE":
                return 0
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                cid, n = struct.unpack("<4sI", fh.read(8))
                pos += 8 + n + (n & 1)
                if cid == b"data":
                    break
            else:
                return 0
            while pos + 8 <= size:          # what follows must be chunks (LIST, id3, ...)
                fh.seek(pos)
                cid, n = struct.unpack("<4sI", fh.read(8))
                if not all(0x20 <= c < 0x7F for c in cid) or pos + 8 + n > size:
                    break
                pos += 8 + n + (n & 1)
    except OSError:
        return 0
    rest = size - pos
    return rest if rest >= max(block_align, 8) else 0


def _encode_tags(args, src) -> dict:
    """The input's tags (unless --no-tags), then each --tag: a key given replaces the input's,
    a key given twice gets two values, KEY= with nothing after it removes KEY."""
    from .tags import parse_tag_option, read_file_tags
    tags = {} if args.no_tags else {k: [v] for k, v in read_file_tags(src).items()}
    given: dict = {}
    for text in args.tag or ():
        try:
            key, value = parse_tag_option(text)
        except ValueError as e:
            raise CliError(str(e)) from None
        given.setdefault(key.upper(), []).append(value)
    for key, values in given.items():
        values = [v for v in values if v]
        if values:
            tags[key] = values
        else:
            tags.pop(key, None)
    return tags


#: sample frames read from the input per block when encoding a file: 16384 (0.37 s at 44.1 kHz)
#: keeps an encode's peak RSS below 100 MB (a 240-s file: 103 MB with 65536, the same bytes and
#: CPU time; the encoder's output does not depend on how its input is split)
READ_BLOCK = 1 << 14


def _measure_loudness(src):
    """BS.1770 loudness of a seekable input, read once before encoding (None: cannot read it
    or too short/silent: then the stream has none)."""
    import soundfile as sf

    from .loudness import LoudnessMeter
    m = LoudnessMeter(src.samplerate, src.channels)
    try:
        while True:
            x = src.read(READ_BLOCK, dtype="float64", always_2d=True)
            if not len(x):
                break
            m.feed(x)
        src.seek(0)
    except (RuntimeError, sf.LibsndfileError):
        src.seek(0)
        return False
    value = m.integrated()
    return False if value is None else value


def cmd_encode(args):
    import soundfile as sf

    from . import _clinotes
    from .encoder import Encoder
    from .pacfile import atomic_output
    from .options import from_args
    if args.input != "-" and os.path.splitext(args.input)[1].lower() == ".pac":
        raise CliError(f"{args.input} is already a pacodec file (did you mean 'pacodec decode'?)")
    opts = from_args(args)               # a bad combination of options fails before any I/O
    out = args.output or ("-" if args.input == "-" else output_name(args.input, ".pac"))
    if out == "-":
        _refuse_terminal(args.force)
    src = open_input_audio(args.input)
    name = src.display_name
    if _clinotes.refuse_audio_name(out):       # after the input's own problems
        src.close()
        raise CliError(_clinotes.refuse_audio_name(out))
    with src:
        total = src.frames if src.seekable() else None
        # before the rate checks: minimum_bitrate runs the encoder (compiling it when cold)
        _clinotes.note_cold_kernels(_clinotes.ENCODE_KERNELS, args.quiet)
        opts = coding_options_for(args, src.samplerate, src.channels)
        kwargs = opts.encoder_kwargs()
        loudness = True              # measured while encoding; the header is rewritten at the end
        if out == "-" and src.seekable():
            loudness = _measure_loudness(src)       # stdout cannot be rewritten: measure first
        enc = Encoder(src.samplerate, src.channels, total_frames=total,
                      tags=_encode_tags(args, src), loudness=loudness, **kwargs)
        nbytes = 0
        prog = seconds_progress(total / src.samplerate if total else None, "encoding", args.quiet)

        def run(fh, rewrite):
            nonlocal nbytes
            fh.write(enc.header())
            nbytes += len(enc.header())
            done = 0
            while True:
                try:
                    x = src.read(READ_BLOCK, dtype="float64", always_2d=True)
                except (RuntimeError, sf.LibsndfileError) as e:
                    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise CliError(f"{name}: cannot read the audio after {done} samples "
                                   f"(truncated or damaged file? {msg})") from None
                if not len(x):
                    break
                for fr in enc.encode(x):
                    fh.write(fr)
                    nbytes += len(fr)
                done += len(x)
                prog.update(done / src.samplerate)
            for fr in enc.flush():
                fh.write(fr)
                nbytes += len(fr)
            if rewrite:
                fh.seek(0)                  # the metadata block with the measured loudness
                fh.write(enc.header())
            prog.done()
            return done

        if out == "-":
            stdout = _clinotes.binary_stdout()
            done = run(stdout, False)
            stdout.flush()
        else:
            with _name_write_errors(out), atomic_output(
                    out, force=args.force, inputs=[args.input] if args.input != "-" else []) as fh:
                done = run(fh, True)
        if args.input != "-" and src.format in ("WAV", "WAVEX"):
            extra = _wav_trailing_audio(args.input, src.channels * 2)
            if extra:
                warn(f"{args.input}: the WAV header declares {done} samples, but {extra} more "
                      f"bytes follow its data chunk; they were not encoded (the header is "
                      f"probably wrong)")
        if opts.mode != "vbr":                  # a rate was asked for: is it what came out?
            _clinotes.check_rate(out, nbytes, done / src.samplerate,
                                 opts.asked_bitrate or opts.bitrate, opts.bitrate,
                                 options.pcm_kbps(src.samplerate, src.channels), src.samplerate,
                                 src.channels, warn)
        if not args.quiet and out != "-":
            size = os.path.getsize(out)
            secs = done / src.samplerate
            rate = 8 * size / secs / 1000 if secs else 0.0
            print(f"{out}: {secs:.2f} s, {src.samplerate} Hz, {src.channels} ch, {size} bytes, "
                  f"{rate:.1f} kbit/s ({enc.options.describe()})", file=sys.stderr)
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


#: output formats by extension (libsndfile writes them; see `pacodec decode --help`)
OUTPUT_FORMATS = {"wav": "WAV", "flac": "FLAC", "aiff": "AIFF", "aif": "AIFF", "ogg": "OGG",
                  "rf64": "RF64", "w64": "W64", "caf": "CAF", "au": "AU"}


class _PacInput:
    """Open a ``.pac`` input (path or ``-``) for :class:`PacFile`, with errors that name it.

    The first bytes are looked at before decoding: another audio format gets "this is a WAV
    file, not a pacodec stream; did you mean `pacodec encode`?" instead of "bad magic".
    (A stream without a header is read from a pipe or FIFO too: PacFile reads ahead to its
    first in-band configuration.)"""

    def __init__(self, path):
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        if path == "-":
            refuse_terminal_input()
            self.fh = sys.stdin.buffer
            self.own = False
        else:
            if not os.path.exists(path):
                raise CliError(f"{path}: no such file")
            if os.path.isdir(path):
                raise CliError(f"{path} is a directory")
            self.fh = open(path, "rb")
            self.own = True
        try:
            head = self.fh.peek(12)[:12]
        except (AttributeError, OSError):
            head = b""
        kind = sniff_audio(head)
        if kind is not None:
            self.close()
            raise CliError(f"{self.name}: this is a{'n' if kind[0] in 'AEIOU' else ''} {kind} "
                           f"file, not a pacodec stream; did you mean `pacodec encode`?")
        try:
            seekable = self.fh.seekable()
        except OSError:
            seekable = False
        self.seekable = seekable

    def close(self):
        if self.own:
            self.fh.close()

    def named(self, e):
        """``e`` (a FormatError...) as a CliError that names the input."""
        msg = str(e)
        return CliError(msg if msg.startswith(self.name) else f"{self.name}: {msg}")


def _truncated(inp) -> bool:
    """Whether a seekable ``.pac`` input does not end with a valid end-of-stream frame
    (FORMAT.md §4: a truncated file; its header's length will not all decode).  Unseekable
    inputs cannot be looked at in advance: False."""
    import binascii
    if not inp.seekable:
        return False
    try:
        fh = inp.fh
        pos = fh.tell()
        try:
            fh.seek(-13, os.SEEK_END)
            tail = fh.read(13)
        finally:
            fh.seek(pos)
    except (OSError, ValueError):
        return False
    # an end-of-stream frame: sync 0xCA5E, type 2 with length 6, seq, u(48) length, CRC-16
    return not (len(tail) == 13 and tail[:4] == b"\xca\x5e\x80\x06"
                and binascii.crc_hqx(tail[2:11], 0) == int.from_bytes(tail[11:], "big"))


def cmd_decode(args):
    import warnings

    from . import _clinotes
    from ._wavout import RIFF_LIMIT, WavWriter
    from .errors import FormatError
    from .pacfile import PacFile, atomic_output
    out = args.output or ("-" if args.input == "-" else output_name(args.input, ".wav"))
    if out == "-":
        fmt = "WAV"
    else:
        base = os.path.basename(out)
        ext = os.path.splitext(base)[1].lower().lstrip(".")
        fmt = OUTPUT_FORMATS.get(ext)
        if fmt is None:
            what = f"'.{ext}' files" if ext else f"'{base}': the name has no extension to choose a format by"
            raise CliError(f"cannot write {what}; use .wav, .flac, .aiff, .ogg "
                           f"(or .rf64, .w64, .caf, .au)")
    if fmt in ("FLAC", "OGG") and args.float:
        raise CliError(f"{fmt} cannot hold float samples; drop --float or write .wav")
    if out == "-":
        _refuse_terminal(args.force)
    subtype = "FLOAT" if args.float else ("VORBIS" if fmt == "OGG" else "PCM_16")
    # internal: the RIFF size above which WAV output becomes RF64 (tests use a small one)
    limit = int(os.environ.get("_PACODEC_RF64_ABOVE", RIFF_LIMIT))
    inp = _PacInput(args.input)
    try:
        _clinotes.note_cold_kernels(_clinotes.DECODE_KERNELS, args.quiet)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                f = PacFile(inp.fh, strict=args.strict)
            except FormatError as e:
                raise inp.named(e) from None
            with f:
                prog = seconds_progress(f.frames / f.samplerate if f.frames else None,
                                        "decoding", args.quiet)

                def blocks():
                    done = 0
                    try:
                        for b in f.blocks(1 << 16):
                            yield b
                            done += len(b)
                            prog.update(done / f.samplerate)
                    except FormatError as e:
                        raise inp.named(e) from None
                    prog.done()

                def run_wav(fh, seekable):
                    frames = f.frames
                    if not seekable and frames is not None and _truncated(inp):
                        frames = None     # the header's length is not what will decode
                    w = WavWriter(fh, f.samplerate, f.channels, float32=args.float,
                                  frames=frames, seekable=seekable, limit=limit,
                                  warn=lambda m: warnings.warn("pacodec: " + m), tags=f.tags)
                    for b in blocks():
                        w.write(b)
                    w.close()

                def run_sf(fh):
                    import numpy as np
                    import soundfile as sf    # here: WAV output (the usual case) needs neither
                    guard = _WriteGuard(fh)
                    try:
                        with sf.SoundFile(guard, "w", samplerate=f.samplerate,
                                          channels=f.channels, format=fmt, subtype=subtype) as snd:
                            if f.tags:                 # before the audio: libsndfile's rule
                                from .tags import write_file_tags
                                left = write_file_tags(snd, f.tags)
                                if left:
                                    warnings.warn(f"pacodec: {out}: {fmt} output through "
                                                  f"libsndfile cannot hold the tag(s) "
                                                  f"{', '.join(left)}; not written")
                            for b in blocks():
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
                    run_wav(_clinotes.binary_stdout(), False)
                else:
                    if (fmt in ("AIFF", "AU") and f.frames is not None
                            and f.frames * f.channels * (4 if args.float else 2) > 0xFFFFFFF0):
                        raise CliError(f"{out}: {fmt} cannot hold more than 4 GiB; write .wav "
                                       f"(RF64 beyond 4 GiB), .w64 or .flac")
                    with _name_write_errors(out), atomic_output(
                            out, force=args.force,
                            inputs=[args.input] if args.input != "-" else []) as fh:
                        if fmt == "WAV":
                            run_wav(fh, True)
                        else:
                            run_sf(fh)
                problems = f.problems
                for p in problems[:10]:
                    print(f"pacodec: warning: {p}", file=sys.stderr)
                if len(problems) > 10:
                    print(f"pacodec: warning: ... and {len(problems) - 10} more problems "
                          f"(see 'pacodec info')", file=sys.stderr)
    finally:
        inp.close()
    for w in caught:                   # one line each, not Python's two-line warning format
        msg = str(w.message)
        print(msg.replace("pacodec: ", "pacodec: warning: ", 1) if msg.startswith("pacodec: ")
              else f"pacodec: warning: {msg}", file=sys.stderr)
    return 0


def cmd_info(args):
    import json

    from .errors import FormatError
    from .pacfile import info
    inp = _PacInput(args.input)
    try:
        try:
            i = info(inp.fh)
        except FormatError as e:
            raise inp.named(e) from None
    finally:
        inp.close()
    i.path = inp.name
    if args.json:
        print(json.dumps(i.as_dict(), indent=2))
    else:
        dur = "unknown" if i.duration is None else f"{i.duration:.3f} s ({i.frames} samples)"
        if i.truncated:
            declared = ("" if i.declared_frames is None else
                        f"; the header declares {i.declared_frames / i.samplerate:.3f} s")
            dur += f", measured: no end-of-stream frame (truncated){declared}"
            warn(f"{i.path}: truncated: {i.duration:.3f} s of audio decode from it{declared}")
        print(f"{i.path}: pacodec stream, format version {i.format_version}")
        print(f"  sample rate   {i.samplerate} Hz, {i.channels} channel(s)")
        print(f"  duration      {dur}")
        grouped = (f"; {i.groups} frame groups of up to {i.max_group}" if i.groups else "")
        print(f"  frames        {i.codec_frames} x {i.frame_size} samples "
              f"({'low-delay' if i.low_delay else 'normal'}, {i.window_shape} window{grouped})")
        q = i.quantizer + (f" (mu={i.mu})" if i.quantizer == "mulaw" else "")
        print(f"  quantizer     {q}")
        print(f"  bands         at least {i.min_band_width} bins wide in long frames")
        if i.bitrate_kbps is not None:
            print(f"  bitrate       {i.bitrate_kbps:.1f} kbit/s ({i.file_bytes} bytes)")
        if i.dcr is not None:
            print(f"  DCR           {100 * i.dcr:.2f} % smaller than 16-bit PCM")
        if i.loudness is not None:
            print(f"  loudness      {i.loudness:.2f} LUFS (ITU-R BS.1770), playback gain "
                  f"{i.gain:+.2f} dB (ReplayGain 2.0, to -18 LUFS)")
        if i.tags:
            width = max(len(k) for k in i.tags)
            print("  tags:")
            for k, v in i.tags.items():
                lines = v.splitlines() or [""]
                print(f"    {k:<{width}}  {lines[0]}")
                for more in lines[1:]:
                    print(f"    {'':<{width}}  {more}")
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
        opts = options.resolve(bitrate=args.bitrate, quality=args.quality)
        pacodec.write(pac, x, fs, **opts.encoder_kwargs())
        t1 = time.perf_counter()
        y, _ = pacodec.read(pac)
        t2 = time.perf_counter()
        size = os.path.getsize(pac)
    secs = len(x) / fs
    err = y.astype(np.float64) - x
    snr = 10 * np.log10(np.sum(x ** 2) / max(np.sum(err ** 2), 1e-20))
    print(f"encoded {opts.describe()}: {size} bytes, actual {8 * size / secs / 1000:.1f} "
          f"kbit/s, {len(x) * x.shape[1] * 2 / size:.1f}x smaller than 16-bit PCM "
          f"(DCR {100 * (1 - size / (len(x) * x.shape[1] * 2)):.1f} %)")
    print(f"decoded: {len(y)} samples (input {len(x)}), exact length: {len(y) == len(x)}")
    compiled = _kernels_compiled()
    note = (f" (includes compiling {compiled} numba kernels; later runs load them from the cache)"
            if compiled else "")
    print(f"encode {t1 - t0:.2f} s, decode {t2 - t1:.2f} s{note}")
    print(f"SNR {snr:.1f} dB (waveform; a perceptual codec is judged by ViSQOL, below)")
    try:
        from .quality import visqol
        print(f"ViSQOL (audio mode) {visqol(x, y, fs):.3f}  (max ~4.73)")
    except ImportError as e:
        print(f"ViSQOL: not installed ({e}); see README 'Measuring quality'")
    return 0 if len(y) == len(x) else 1


def _kernels_compiled() -> int:
    """How many numba kernels this process compiled (rather than loaded from the cache)."""
    from ._jit import dispatchers
    n = 0
    for d in dispatchers:
        stats = getattr(d, "stats", None)
        if stats is not None:
            n += bool(sum(stats.cache_misses.values())) or (
                not stats.cache_path and bool(d.signatures))
    return n


def cmd_gst_path(args):
    from . import gst
    if args.env:
        print(gst.shell_env(), end="")
    else:
        print(gst.plugin_path())
    return 0


#: commands whose parser is built without the other commands' modules (see :func:`build_parser`)
CORE_COMMANDS = ("encode", "decode", "info")


def build_parser(command: str | None = None):
    """The command line's parser.  Given one of :data:`CORE_COMMANDS` (the command ``main`` is
    about to run), the batch, listen and streaming commands' subparsers are left out: their
    modules (socket, hashlib, json, html, the streaming CLI) are not imported for an encode or
    a decode.  That command parses and reports errors as with the whole parser; anything else
    (``--help``, another or a misspelt command) gets the whole parser."""
    p = argparse.ArgumentParser(
        prog="pacodec", description="pacodec perceptual audio codec",
        epilog="encode, decode and the streaming commands take --quiet (no progress or status "
               "on stderr).  In 'encode', -q is the VBR quality (as in oggenc); in the "
               "streaming commands -q is short for --quiet.")
    p.add_argument("--version", action="version", version=f"pacodec {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    e = sub.add_parser("encode", help="encode an audio file (WAV, FLAC, OGG, AIFF...) to .pac",
                       description="Encode any file libsndfile reads (WAV, FLAC, OGG, AIFF, ...)\n"
                                   "to a .pac stream.  Without a rate option: VBR at quality "
                                   f"{options.DEFAULT_QUALITY:g},\nlike opusenc and oggenc.",
                       epilog=options.rate_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("input", help="audio file, or - for stdin")
    e.add_argument("-o", "--output", help="output .pac (default: input name with .pac; - = stdout)")
    options.add_arguments(e)
    e.add_argument("-f", "--force", action="store_true",
                   help="overwrite an existing output; write binary to a terminal")
    e.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    e.add_argument("--tag", action="append", metavar="KEY=VALUE",
                   help="set a tag (Vorbis comment names: TITLE, ARTIST, ALBUM, TRACKNUMBER, "
                        "DATE, GENRE, COMMENT, or any other); replaces the input's; repeat the "
                        "option for more (the same KEY twice: two values; KEY= removes it)")
    e.add_argument("--no-tags", action="store_true",
                   help="do not copy the input's tags (title, artist, ... as libsndfile reads "
                        "them from FLAC, Ogg, WAV, AIFF); the loudness is measured anyway")
    e.set_defaults(func=cmd_encode)

    d = sub.add_parser("decode", help="decode a .pac file to WAV, FLAC, AIFF, OGG...",
                       description="Decode a .pac stream.  The output format follows the "
                                   "extension: .wav (RF64 beyond 4 GiB), .flac, .aiff/.aif, "
                                   ".ogg (Vorbis), .rf64, .w64, .caf, .au -- what libsndfile "
                                   "writes.  -o - streams WAV to stdout.")
    d.add_argument("input", help=".pac file, or - for stdin")
    d.add_argument("-o", "--output",
                   help="output file (default: input name with .wav; - = WAV on stdout)")
    d.add_argument("--float", action="store_true",
                   help="write 32-bit float samples (no clipping; WAV, AIFF, CAF...)")
    d.add_argument("--strict", action="store_true", help="fail on damaged frames instead of concealing")
    d.add_argument("-f", "--force", action="store_true",
                   help="overwrite an existing output; write binary to a terminal")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_decode)

    i = sub.add_parser("info", help="describe a .pac file and check its integrity")
    i.add_argument("input", help=".pac file, or - for stdin")
    i.add_argument("--json", action="store_true",
                   help="print everything (every problem found, too) as one JSON object")
    i.set_defaults(func=cmd_info)

    m = sub.add_parser("demo", help="encode and decode the shipped clip and report quality")
    m.add_argument("-b", "--bitrate", type=float, metavar="KBPS", help="CBR bitrate in kbit/s")
    m.add_argument("-q", "--quality", type=float, metavar="Q",
                   help=f"VBR quality 0..10 (default {options.DEFAULT_QUALITY:g}, as 'encode')")
    m.set_defaults(func=cmd_demo)

    gp = sub.add_parser("gst-path", help="print the GStreamer plugin directory of the pacodec elements")
    gp.add_argument("--env", action="store_true",
                    help="print export lines for GST_PLUGIN_PATH, PYTHONPATH and GST_REGISTRY instead")
    gp.set_defaults(func=cmd_gst_path)

    if command in CORE_COMMANDS:
        return p
    from . import batch                    # stdlib-only at import; work modules load on use
    batch.add_parser(sub)
    from . import listen                   # the same
    listen.add_parser(sub)

    try:
        from .stream import cli as stream_cli
    except ImportError:
        stream_cli = None
    if stream_cli is not None and hasattr(stream_cli, "add_subparsers"):
        stream_cli.add_subparsers(sub)
    return p


def _die_of_sigpipe():
    """The reader of our output went away (``pacodec ... | head``): end the Unix way, silently
    and by SIGPIPE, as cat, gzip and flac do (shell status 141).  Python ignores SIGPIPE and
    raises BrokenPipeError instead; by the time it reaches here every ``finally`` and
    ``atomic_output`` has cleaned up, so only the signal's default action is restored."""
    import signal
    try:                                  # no "Exception ignored ... BrokenPipeError" at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    if hasattr(signal, "SIGPIPE") and threading_is_main():
        sys.stderr.flush()
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        if hasattr(signal, "pthread_sigmask"):      # a parent may have blocked it
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGPIPE})
        # raise() directs the signal at this thread, so it is delivered before it returns (a
        # process-directed kill() may land on another thread, numba's or a pump's, too late)
        signal.raise_signal(signal.SIGPIPE)


def _forget_caught_interrupts():
    """Let the exit status be the one ``main`` returns after a Ctrl-C it handled.

    CPython (3.8 and later) marks a KeyboardInterrupt that leaves an ``exec``/``eval`` of a
    *string* as unhandled for good, even when a caller catches it, and then ends the process by
    SIGINT (status -2, no message) instead of with ``main``'s status.  Modules being imported
    run such code (``namedtuple``, numba, numpy), so a Ctrl-C during start-up hit it: a
    ``pacodec receive`` stopped while loading its decoder died of SIGINT.  Every completed exec
    of a string clears the mark."""
    exec("")


def _one_blas_thread():
    """Start numpy's OpenBLAS with one thread in the ``pacodec encode``/``decode`` process
    (``OPENBLAS_NUM_THREADS=1`` unless set): its worker threads, started when numpy is imported,
    busy-wait for work, ~0.07 of a 1-s file's 0.29 CPU-s per command on 2 cores, and pacodec's
    few matrix products (loudness weights, tonality per short window, concealment) are far too
    small to be split.  The output is the same (240-s file, encode and decode)."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def threading_is_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


def main(argv=None):
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from . import _clinotes
    _clinotes.PROCESS = argv is None      # the pacodec command itself (not main([...]) in-process)
    if argv is None and args.command in ("encode", "decode"):
        # a process of its own: one BLAS thread, and numba without scipy (see skip_blas_probe)
        _one_blas_thread()
        from ._jit import skip_blas_probe
        skip_blas_probe()
    saved = _install_signal_handlers() if threading_is_main() else {}
    try:
        status = args.func(args) or 0
        # what is still buffered for stdout goes now, where a reader that has gone away ends
        # the process by SIGPIPE like any other write (at exit it would be lost silently)
        if sys.stdout is not None:
            sys.stdout.flush()
        return status
    except Terminated as e:
        print("pacodec: terminated", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("pacodec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    except BrokenPipeError:
        _die_of_sigpipe()
        return 128 + 13                  # not reached where SIGPIPE exists
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
        _forget_caught_interrupts()
        if argv is None:
            # the process ends now: keep its final garbage collections from walking numba's
            # and numpy's object graphs (~0.2 CPU-s); finalizers and atexit still run
            import gc
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
