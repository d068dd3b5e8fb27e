"""Command-line front end of the real-time subsystem.

``pacodec/cli.py`` calls :func:`add_subparsers` with its ``subparsers`` object; each
sub-command stores its handler in ``func``, which takes the parsed ``args`` and returns the
exit status (0 success, 1 error; errors are one line on stderr).  ``python -m
pacodec.stream.cli ...`` runs the same commands stand-alone.

    pacodec devices
    pacodec live    [-b KBPS] [--normal-delay] [--conceal M] [--device IN[,OUT]] [-r RATE] [-c CH]
    pacodec send    --to HOST:PORT [--key-file K] [--file F] [-b KBPS] [--normal-delay]
                    [--frames-per-packet N] [--device D]
    pacodec receive --port PORT [--key-file K] [-o FILE.wav [--force]] [--device D] [--conceal M]
    pacodec play    FILE.pac [--start TIME] [--device D] [--duration S]

``live`` and ``send`` code in low-delay mode (8 ms algorithmic delay at 48 kHz) unless given
``--normal-delay``; ``--low-delay`` is accepted and changes nothing.  ``receive`` and ``play``
follow the stream's own configuration.

Every command accepts ``--stats-json PATH`` (final counters as JSON) and ``--quiet``.
"""
import argparse
import sys

from ..errors import PacodecError, UnsupportedError
from ._audio import StatusLine, ctrl_c_stops, parse_device, sounddevice, write_stats

__all__ = ["add_subparsers", "cmd_devices", "cmd_live", "cmd_send", "cmd_receive", "cmd_play",
           "main"]


def _time(text):
    """``SECONDS`` or ``[[H:]M:]S`` -> seconds."""
    try:
        parts = [float(p) for p in str(text).split(":")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad time {text!r}") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"bad time {text!r}")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60.0 + p
    return seconds


def _positive(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


def _common(p, device=True):
    if device:
        p.add_argument("--device", metavar="DEV",
                       help="device index or name (see `pacodec devices`); for live IN,OUT")
    p.add_argument("--duration", type=_positive, metavar="SECONDS",
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--stats-json", metavar="PATH", help="write the final counters as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")


def _codec_opts(p):
    p.add_argument("-b", "--bitrate", type=_positive, default=128.0, metavar="KBPS",
                   help="CBR bitrate in kbit/s for all channels (default 128)")
    from ..options import LOW_DELAY_HELP
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--low-delay", dest="low_delay", action="store_true", default=True,
                      help=LOW_DELAY_HELP)
    mode.add_argument("--normal-delay", dest="low_delay", action="store_false",
                      help="normal mode instead of low-delay mode (the default here): 1024-sample "
                           "frames at 32-48 kHz, better quality per bit, 43 ms algorithmic delay "
                           "at 48 kHz")
    p.add_argument("-r", "--samplerate", type=int, metavar="HZ",
                   help="capture rate (default: the input device's default rate)")
    p.add_argument("-c", "--channels", type=int, metavar="N",
                   help="capture channels (default: up to 2, as the device has)")
    p.add_argument("--blocksize", type=int, default=0, metavar="FRAMES",
                   help="audio block size (default 0: whatever the device prefers)")


def _conceal_opt(p):
    from ..conceal import DEFAULT_METHOD, METHODS
    p.add_argument("--conceal", choices=METHODS, default=None,
                   help=f"how lost packets are concealed (default {DEFAULT_METHOD}): spectral "
                        f"repeats the last spectrum fading; pitch continues the last period "
                        f"(better by ViSQOL, worse by the 2f-model)")


def _decoder_factory(args):
    from .live import default_decoder_factory
    return default_decoder_factory(conceal=args.conceal)


def _key_opt(p):
    p.add_argument("--key-file", metavar="PATH",
                   help="pre-shared key (one line of 32-128 hex digits): every packet carries "
                        "a MAC and only packets with a valid MAC are accepted")


def _load_key(args):
    if not args.key_file:
        return None
    from .packet import load_key
    return load_key(args.key_file)


def add_subparsers(subparsers):
    """Add ``devices``, ``live``, ``send``, ``receive`` and ``play`` to an argparse
    ``subparsers`` object (from ``parser.add_subparsers()``)."""
    p = subparsers.add_parser("devices", help="list audio input and output devices",
                              description="List the audio devices PortAudio sees.")
    p.set_defaults(func=cmd_devices)

    p = subparsers.add_parser(
        "live", help="microphone -> encoder -> decoder -> speakers, in real time",
        description="Hear yourself through the codec: the microphone is encoded and decoded "
                    "on the fly and played back. Shows bitrate, latency and over/underruns. "
                    "Low-delay mode unless --normal-delay is given.")
    _codec_opts(p)
    _conceal_opt(p)
    _common(p)
    p.set_defaults(func=cmd_live)

    p = subparsers.add_parser(
        "send", help="stream the microphone (or a file) as UDP packets",
        description="Encode the microphone, or --file paced in real time, and send one UDP "
                    "packet per frame to HOST:PORT. Low-delay mode unless --normal-delay is "
                    "given; the receiver follows the stream's mode.")
    p.add_argument("--to", required=True, metavar="HOST:PORT", help="receiver address")
    p.add_argument("--file", metavar="FILE",
                   help="send this audio file (wav/flac/.pac ...) in real time instead")
    p.add_argument("--loop", action="store_true", help="with --file: repeat it")
    p.add_argument("--frames-per-packet", type=int, default=1, metavar="N",
                   help="consecutive frames per UDP packet, 1 to 8 (default 1): fewer packets "
                        "(low-delay frames are 5.3 ms: 187.5 packets/s at 48 kHz), each frame "
                        "after the first held back until its packet is full")
    _key_opt(p)
    _codec_opts(p)
    _common(p)
    p.set_defaults(func=cmd_send)

    p = subparsers.add_parser(
        "receive", help="receive a UDP stream and play it (or write a WAV file)",
        description="Receive pacodec UDP packets, smooth network jitter with an adaptive "
                    "buffer, conceal lost packets, and play or record the audio.")
    p.add_argument("--port", type=int, required=True, help="UDP port to listen on")
    p.add_argument("--bind", default="0.0.0.0", metavar="ADDR",
                   help="local address to listen on (default all)")
    p.add_argument("-o", "--output", metavar="FILE.wav",
                   help="write the received audio here instead of playing it")
    p.add_argument("-f", "--force", action="store_true",
                   help="with -o: replace an existing file")
    p.add_argument("--silence", type=_positive, default=2.0, metavar="S",
                   help="a stream quiet this long may be replaced by another (default 2)")
    _key_opt(p)
    p.add_argument("--min-delay", type=float, default=0.0, metavar="S",
                   help="lower bound of the jitter buffer target (seconds)")
    p.add_argument("--max-delay", type=float, default=0.5, metavar="S",
                   help="upper bound of the jitter buffer target (seconds, default 0.5)")
    p.add_argument("--idle-exit", type=_positive, metavar="S",
                   help="exit when no packet came for S seconds (after the first one)")
    p.add_argument("--blocksize", type=int, default=0, metavar="FRAMES",
                   help="audio block size for playback (default 0: whatever the device prefers)")
    _conceal_opt(p)
    _common(p)
    p.set_defaults(func=cmd_receive)

    p = subparsers.add_parser("play", help="play a .pac file in real time",
                              description="Play a .pac file, showing the position.")
    p.add_argument("file", metavar="FILE.pac")
    p.add_argument("--start", type=_time, default=0.0, metavar="TIME",
                   help="start at TIME (seconds or M:SS)")
    _common(p)
    p.set_defaults(func=cmd_play)
    return subparsers


# ---------------------------------------------------------------------------- helpers
def _fail(cmd, exc):
    msg = str(exc) or exc.__class__.__name__
    if type(exc).__name__ == "PortAudioError":
        msg = audio_error_text(exc)
    print(f"pacodec {cmd}: error: {msg.splitlines()[0]}", file=sys.stderr)
    return 1


def audio_error_text(exc) -> str:
    """One line for a PortAudio error ("Error querying device -1" means there is no default
    device: no sound card, or no audio server running)."""
    msg = (str(exc) or type(exc).__name__).splitlines()[0]
    if "device -1" in msg:
        return "no default audio device (no sound card or audio server?); see `pacodec devices`"
    return f"audio device: {msg} (see `pacodec devices`)"


def _guard(cmd):
    def wrap(fn):
        def run(args):
            try:
                with ctrl_c_stops():
                    return fn(args) or 0
            except KeyboardInterrupt:
                return 130
            except (PacodecError, OSError, ValueError, RuntimeError) as exc:
                return _fail(cmd, exc)
            except Exception as exc:
                sd = sys.modules.get("sounddevice")
                if sd is not None and isinstance(exc, sd.PortAudioError):
                    return _fail(cmd, exc)
                raise
        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return run
    return wrap


def _capture_params(args, output=True):
    """Sample rate and channels for capture: from the options, else from the device."""
    sd = sounddevice()
    dev = parse_device(args.device)

    def query(d, kind):
        try:
            return sd.query_devices(d, kind)
        except (ValueError, sd.PortAudioError):
            what = f"{kind} device {d!r}" if d is not None else f"default {kind} device"
            raise UnsupportedError(f"no {what} (see `pacodec devices`)") from None

    in_dev = dev[0] if isinstance(dev, tuple) else dev
    info = query(in_dev, "input")
    rate = args.samplerate or int(info["default_samplerate"])
    ch = args.channels or max(1, min(2, int(info["max_input_channels"])))
    if output:
        out_dev = dev[1] if isinstance(dev, tuple) else dev
        oinfo = query(out_dev, "output")
        ch = min(ch, int(oinfo["max_output_channels"])) if not args.channels else ch
    return rate, ch, dev


def _status(args):
    return StatusLine(enabled=not args.quiet)


# ---------------------------------------------------------------------------- commands
@_guard("devices")
def cmd_devices(args):
    """Print the devices with their host API, channels and default rate."""
    sd = sounddevice()
    devices = sd.query_devices()
    apis = sd.query_hostapis()
    try:
        din, dout = sd.default.device
    except Exception:
        din = dout = -1
    if not len(devices):
        print("no audio devices found", file=sys.stderr)
        return 0
    for i, d in enumerate(devices):
        mark = ("<" if i == din else " ") + (">" if i == dout else " ")
        api = apis[d["hostapi"]]["name"]
        print(f"{mark} {i:3d} {d['name']} ({api}): {d['max_input_channels']} in, "
              f"{d['max_output_channels']} out, {d['default_samplerate']:.0f} Hz")
    print("(< default input, > default output)")
    return 0


def _check_rate(args):
    """-b by the rules of every front-end (pacodec.options: CBR), before any device opens."""
    from ..options import resolve
    resolve(bitrate=args.bitrate, low_delay=args.low_delay)


@_guard("live")
def cmd_live(args):
    """Microphone -> codec -> speakers."""
    from .live import LivePipeline
    _check_rate(args)
    rate, ch, dev = _capture_params(args)
    pipe = LivePipeline(samplerate=rate, channels=ch, bitrate=args.bitrate,
                        low_delay=args.low_delay, device=dev, blocksize=args.blocksize,
                        decoder_factory=_decoder_factory(args))
    stats = pipe.run(args.duration, status=_status(args))
    write_stats(args.stats_json, stats)
    if pipe.error is not None:
        raise pipe.error
    return 0


@_guard("send")
def cmd_send(args):
    """Microphone or file -> codec -> UDP."""
    from .sender import Sender
    from .transport import parse_hostport
    dest = parse_hostport(args.to)
    _check_rate(args)
    key = _load_key(args)
    if key is None:
        print("pacodec send: warning: no --key-file: packets are not authenticated (anyone on "
              "the network can inject audio into the receiver)", file=sys.stderr)
    if args.file:
        sender = Sender(dest, source=args.file, bitrate=args.bitrate, low_delay=args.low_delay,
                        loop=args.loop, samplerate=args.samplerate, key=key,
                        frames_per_packet=args.frames_per_packet)
    else:
        rate, ch, dev = _capture_params(args, output=False)
        sender = Sender(dest, samplerate=rate, channels=ch, bitrate=args.bitrate,
                        low_delay=args.low_delay, device=dev, blocksize=args.blocksize, key=key,
                        frames_per_packet=args.frames_per_packet)
    stats = sender.run(args.duration, status=_status(args))
    write_stats(args.stats_json, stats)
    return 0


@_guard("receive")
def cmd_receive(args):
    """UDP -> jitter buffer -> decoder -> speakers or WAV."""
    from .receiver import Receiver
    if not 0 <= args.port <= 65535:
        raise ValueError(f"port out of range: {args.port}")
    key = _load_key(args)
    rx = Receiver((args.bind, args.port), output=args.output, device=parse_device(args.device),
                  blocksize=args.blocksize, min_delay=args.min_delay, max_delay=args.max_delay,
                  idle_timeout=args.idle_exit, key=key, force=args.force, silence=args.silence,
                  decoder_factory=_decoder_factory(args))
    if key is None:
        print(f"pacodec receive: warning: no --key-file: anyone who can send UDP to port "
              f"{rx.address[1]} can inject audio into this stream", file=sys.stderr)
    try:
        stats = rx.run(args.duration, status=_status(args))
    finally:
        write_stats(args.stats_json, rx.stats())
    if args.output and rx.written is None and not args.quiet:
        print(f"pacodec receive: no stream received; {args.output} not written", file=sys.stderr)
    del stats
    return 0


@_guard("play")
def cmd_play(args):
    """Real-time playback of a .pac file."""
    from .player import FilePlayer
    player = FilePlayer(args.file, start=args.start, device=parse_device(args.device))
    stats = player.run(args.duration, status=_status(args))
    write_stats(args.stats_json, stats)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pacodec", description="pacodec real-time streaming")
    sub = parser.add_subparsers(dest="command", required=True)
    add_subparsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
