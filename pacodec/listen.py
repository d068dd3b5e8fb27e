"""``pacodec listen``: hear what the rate options do, side by side in a browser.

    pacodec listen song.flac -b 64 -b 128 -d 4 -o song-listen     # -> song-listen/index.html

writes a folder with ``index.html`` and, beside it, the original (the excerpt, as 16-bit FLAC,
``original.flac``) and one encoded + decoded version per rate option: ``b64.pac`` and
``b64.flac`` (decoded, 16-bit FLAC).  The page has a player per version with its rate option,
actual bitrate, ``.pac`` size and DCR (data compression rate against 16-bit PCM), and links to
the files.  It needs no network and no server (open it from disk); starting one player pauses
the others and carries the playback position over, for A/B listening.

Options repeat (``-b 64 -b 96 -d 1``); without any, ``-q 7 -b 64 -d 4``.  ``--start`` and
``--duration`` choose an excerpt.  The folder must not exist or be empty; ``--force`` writes into
an existing one, replacing only the files of this page.  Every file is written to a temporary
name and renamed when complete.
"""
from __future__ import annotations

import argparse
import html
import os
import sys
from urllib.parse import quote

__all__ = ["add_parser", "cmd_listen", "Version"]

#: without rate options: encode's default (VBR quality 7), a low CBR rate and a high distance
DEFAULT_VERSIONS = (("quality", 7.0), ("bitrate", 64.0), ("distance", 4.0))
_OPTION = {"bitrate": ("-b", "b", "CBR"), "abr": ("--abr", "abr", "ABR"),
           "quality": ("-q", "q", "VBR quality"), "distance": ("-d", "d", "VBR distance")}


class Version:
    """One rate option: ``kind`` (bitrate, abr, quality, distance) and its value."""

    def __init__(self, kind: str, value: float):
        self.kind, self.value = kind, float(value)
        flag, stem, self.mode = _OPTION[kind]
        self.label = f"{flag} {self.value:g}"
        self.stem = f"{stem}{self.value:g}"

    def namespace(self, base):
        """``base`` (the parsed arguments) with only this rate option set, for the encoder
        option rules of ``pacodec encode``."""
        ns = argparse.Namespace(**vars(base))
        for k in _OPTION:
            setattr(ns, k, None)
        setattr(ns, self.kind, self.value)
        return ns


def _versions(args) -> list[Version]:
    out, seen = [], set()
    for kind in ("bitrate", "abr", "quality", "distance"):
        for v in getattr(args, f"{kind}_list") or ():
            if (kind, v) not in seen:
                seen.add((kind, v))
                out.append(Version(kind, v))
    return out or [Version(k, v) for k, v in DEFAULT_VERSIONS]


def _seconds(text):
    from ._frontend import CliError
    try:
        parts = [float(p) for p in str(text).split(":")]
    except ValueError:
        raise CliError(f"bad time {text!r}: give seconds or M:SS") from None
    value = 0.0
    for p in parts:
        value = value * 60 + p
    if not value >= 0 or value == float("inf"):
        raise CliError(f"bad time {text!r}: give seconds or M:SS")
    return value


def _check_output_dir(path: str, force: bool):
    from ._frontend import CliError
    if os.path.exists(path) and not os.path.isdir(path):
        raise CliError(f"{path} exists and is not a directory")
    if os.path.isdir(path) and os.listdir(path) and not force:
        raise CliError(f"{path} exists and is not empty (use --force to write the page's files "
                       f"into it)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CliError(f"directory {parent} does not exist")


def _write_flac(path, x, fs, force):
    import numpy as np
    import soundfile as sf

    from .pacfile import atomic_output
    with atomic_output(path, force=force) as fh:
        with sf.SoundFile(fh, "w", samplerate=fs, channels=x.shape[1], format="FLAC",
                          subtype="PCM_16") as snd:
            snd.write(np.clip(x, -1.0, 32767 / 32768))


def cmd_listen(args):
    import numpy as np

    from . import _clinotes
    from .api import decode
    from ._audioin import open_input_audio
    from ._frontend import CliError, coding_options_for, warn
    from .options import pcm_kbps
    from .encoder import Encoder
    from .pacfile import atomic_output
    if args.input == "-":
        raise CliError("listen needs a file, not standard input")
    versions = _versions(args)
    out = args.output or os.path.splitext(args.input)[0] + "-listen"
    src = open_input_audio(args.input)
    with src:
        fs, ch = src.samplerate, src.channels
        _clinotes.note_cold_kernels(_clinotes.ENCODE_KERNELS + _clinotes.DECODE_KERNELS,
                                    args.quiet)
        kwargs = [coding_options_for(v.namespace(args), fs, ch).encoder_kwargs()
                  for v in versions]
        start = int(round(_seconds(args.start) * fs)) if args.start else 0
        count = -1 if args.duration is None else int(round(_seconds(args.duration) * fs))
        if src.seekable():
            if start >= src.frames and src.frames:
                raise CliError(f"{args.input}: --start {args.start} is past the end "
                               f"({src.frames / fs:.2f} s)")
            src.seek(start)
        try:
            x = src.read(count, dtype="float32", always_2d=True)
        except RuntimeError as e:
            raise CliError(f"{args.input}: cannot read the audio "
                           f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not len(x):
        raise CliError(f"{args.input}: no audio to listen to")
    if not np.isfinite(x).all():
        raise CliError(f"{args.input}: the audio holds NaN or infinite samples")
    # every option checked (the encoders built) before anything is written
    encoders = [Encoder(fs, ch, total_frames=len(x), **kw) for kw in kwargs]
    _check_output_dir(out, args.force)
    os.makedirs(out, exist_ok=True)
    secs = len(x) / fs
    pcm_bytes = len(x) * ch * 2
    _write_flac(os.path.join(out, "original.flac"), x, fs, args.force)
    rows = []
    for v, kw, enc in zip(versions, kwargs, encoders):
        data = enc.header() + b"".join(enc.encode(x.astype(np.float64))) + b"".join(enc.flush())
        with atomic_output(os.path.join(out, v.stem + ".pac"), force=args.force) as fh:
            fh.write(data)
        y, _ = decode(data)
        _write_flac(os.path.join(out, v.stem + ".flac"), y, fs, args.force)
        kbps = 8 * len(data) / secs / 1000
        dcr = 1 - len(data) / pcm_bytes
        rows.append((v, len(data), kbps, dcr))
        if v.kind in ("bitrate", "abr"):
            _clinotes.check_rate(v.stem + ".pac", len(data), secs, v.value,
                                 kw.get("bitrate", kw.get("abr")),
                                 pcm_kbps(fs, ch), fs, ch, warn)
        if not args.quiet:
            print(f"listen: {v.label}: {kbps:.1f} kbit/s, {len(data)} bytes, DCR "
                  f"{100 * dcr:.2f} %", file=sys.stderr)
    page = _page(os.path.basename(args.input), fs, ch, secs, start / fs, pcm_bytes, rows)
    with atomic_output(os.path.join(out, "index.html"), force=args.force) as fh:
        fh.write(page.encode("utf-8"))
    if not args.quiet:
        print(f"{os.path.join(out, 'index.html')}: {len(rows)} versions and the original; "
              f"open it in a browser", file=sys.stderr)
    return 0


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:62em}
table{border-collapse:collapse}td,th{padding:.35em .8em;border-bottom:1px solid #ccc;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}audio{width:22em}caption{text-align:left}"""

# one player at a time, at the same position: A/B listening
_SCRIPT = """const players=[...document.querySelectorAll('audio')];
for(const p of players){p.addEventListener('play',()=>{for(const q of players){
if(q!==p&&!q.paused){p.currentTime=q.currentTime;q.pause();}}});}"""


def _page(name, fs, ch, secs, start, pcm_bytes, rows) -> str:
    e = html.escape
    excerpt = f" from {start:.2f} s" if start else ""
    lines = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pacodec listen: {e(name)}</title>", f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(name)}</h1>",
        f"<p>{secs:.2f} s{excerpt}, {fs} Hz, {ch} channel(s).  DCR: how much smaller than 16-bit "
        f"PCM ({pcm_bytes} bytes).  Starting a player pauses the others and takes over their "
        f"position.</p>",
        "<table><tr><th>version</th><th>player</th><th>bitrate</th><th>.pac size</th>"
        "<th>DCR</th><th>files</th></tr>",
        f'<tr><td>original</td><td><audio controls preload="none" '
        f'src="original.flac"></audio></td><td class="n">{fs * ch * 16 / 1000:g} kbit/s '
        f'(16-bit PCM)</td><td class="n">{pcm_bytes} bytes (PCM)</td><td class="n">0 %</td>'
        f'<td><a href="original.flac">original.flac</a></td></tr>',
    ]
    for v, size, kbps, dcr in rows:
        pac, flac = quote(v.stem + ".pac"), quote(v.stem + ".flac")
        lines.append(
            f'<tr><td><code>{e(v.label)}</code> ({e(v.mode)})</td><td><audio controls '
            f'preload="none" src="{flac}"></audio></td><td class="n">{kbps:.1f} kbit/s</td>'
            f'<td class="n">{size} bytes</td><td class="n">{100 * dcr:.2f} %</td>'
            f'<td><a href="{pac}">{e(v.stem)}.pac</a>, <a href="{flac}">{e(v.stem)}.flac</a>'
            f'</td></tr>')
    lines += ["</table>", "<p>Made by <code>pacodec listen</code>; the decoded versions are "
              "16-bit FLAC.</p>", f"<script>{_SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(lines)


def add_parser(sub):
    """Register ``pacodec listen`` on the CLI's subparsers."""
    p = sub.add_parser(
        "listen", help="a web page to hear the original and encoded versions side by side",
        description="Encode an audio file (or an excerpt) at one or more rate options, decode "
                    "each, and write a folder with index.html: a player per version with its "
                    "bitrate, size and DCR, beside the original.  Rate options repeat; "
                    "without any: -q 7 -b 64 -d 4.")
    p.add_argument("input", help="audio file (WAV, FLAC, OGG, AIFF...)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="folder for index.html and the audio files (default: INPUT-listen)")
    p.add_argument("-b", "--bitrate", dest="bitrate_list", type=float, action="append",
                   metavar="KBPS", help="a CBR version at KBPS kbit/s (repeatable)")
    p.add_argument("--abr", dest="abr_list", type=float, action="append", metavar="KBPS",
                   help="an average-bitrate version (repeatable)")
    p.add_argument("-q", "--quality", dest="quality_list", type=float, action="append",
                   metavar="Q", help="a VBR version at quality Q, 0..10 (repeatable)")
    p.add_argument("-d", "--distance", dest="distance_list", type=float, action="append",
                   metavar="D", help="a VBR version at perceptual distance D (repeatable)")
    p.add_argument("--quantizer", choices=["uniform", "power", "mulaw"], default=None,
                   help="quantizer for every version (default uniform)")
    p.add_argument("--mu", type=int, default=None, metavar="MU", help="mu-law parameter")
    p.add_argument("--window", choices=["sine", "kbd"], default="sine", help="window shape")
    from .options import LOW_DELAY_HELP
    p.add_argument("--low-delay", action="store_true", help=LOW_DELAY_HELP)
    p.add_argument("--start", metavar="TIME", help="excerpt start, seconds or M:SS")
    p.add_argument("--duration", metavar="TIME", help="excerpt length, seconds or M:SS")
    p.add_argument("-f", "--force", action="store_true",
                   help="write into an existing, non-empty folder (replacing this page's files)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_listen, bitrate=None, abr=None, quality=None, distance=None)
    return p
