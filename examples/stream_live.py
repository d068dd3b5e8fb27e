#!/usr/bin/env python3
"""Hear your microphone through the codec (the Python side of `pacodec live`).

    python examples/stream_live.py [--bitrate 64] [--low-delay] [--seconds 10]

The pipeline's audio callback only moves samples between preallocated ring buffers; the
codec runs in its own thread.  stats() may be read from this thread while it runs.
"""
import argparse
import sys
import time

from pacodec.stream import LivePipeline


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bitrate", type=float, default=64)
    ap.add_argument("--low-delay", action="store_true")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--samplerate", type=int, default=48000)
    ap.add_argument("--channels", type=int, default=1)
    args = ap.parse_args()
    try:
        run(args)
    except Exception as e:          # no sound card, busy device...: one line, not a traceback
        from pacodec.stream.cli import audio_error_text
        text = audio_error_text(e) if type(e).__name__ == "PortAudioError" else str(e)
        sys.exit(f"stream_live: {text}")


def run(args):
    with LivePipeline(samplerate=args.samplerate, channels=args.channels,
                      bitrate=args.bitrate, low_delay=args.low_delay) as live:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            print("\r" + live.status_text(), end="", flush=True)
            time.sleep(0.25)
    print()
    print(live.stats())


if __name__ == "__main__":
    main()
