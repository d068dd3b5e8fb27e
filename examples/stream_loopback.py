#!/usr/bin/env python3
"""Stream a file over UDP on this machine through a lossy link, and keep what arrives.

No sound card needed: a Sender paces the file in real time, a LossyRelay drops and reorders
packets, a Receiver puts them back in order, conceals the lost ones and writes a WAV file.

    python examples/stream_loopback.py IN.wav OUT.wav [--loss 0.1] [--bitrate 96]
"""
import argparse
import time

from pacodec.stream.packet import unpack as unpack_packet
from pacodec.stream import LossyRelay, Receiver, Sender


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--loss", type=float, default=0.1)
    ap.add_argument("--bitrate", type=float, default=96)
    ap.add_argument("--low-delay", action="store_true")
    args = ap.parse_args()

    with Receiver(("127.0.0.1", 0), output=args.output, idle_timeout=1.0) as rx:
        with LossyRelay(rx.address, loss=args.loss, reorder=0.02, seed=1,
                        seq_of=lambda d: unpack_packet(d).seq) as relay:
            with Sender(relay.address, source=args.input, bitrate=args.bitrate,
                        low_delay=args.low_delay) as tx:
                while not tx.finished:
                    print("\r" + rx.status_text(), end="", flush=True)
                    time.sleep(0.25)
            while not rx.done:          # the receiver stops 1 s after the last packet
                time.sleep(0.1)
    print("\r" + rx.status_text())
    s = rx.stats()
    print(f"relay dropped {relay.dropped} of {relay.received} packets; receiver: lost "
          f"{s['lost']}, late {s['late']}, concealed {s['concealed']} frames")


if __name__ == "__main__":
    main()
