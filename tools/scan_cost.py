"""Cost per input byte of the frame scanner on runs of false sync words (decode and info).

    python tools/scan_cost.py [--kbytes 400]

Each case is a real header and config frame, then a run of one pattern, then one audio frame.
Prints microseconds per input byte for ``Decoder.feed`` (8 KiB chunks) and ``pacodec.info``.
"""
import argparse
import os
import tempfile
import time
import warnings

import pacodec
from pacodec import container as ct
from pacodec.config import stream_config_for
from pacodec.decoder import Decoder

PATTERNS = {
    "bad-crc 7-byte frames": b"\xca\x5e\x00\x00\x00\x12\x34",
    "sync words claiming 16 KiB frames": b"\xca\x5e\x3f\xff",
    "sync words only": b"\xca\x5e",
    "zeros": bytes(7),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kbytes", type=int, default=400, help="length of each run (kB)")
    args = ap.parse_args()
    cfg = stream_config_for(48000, 2)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.pac")
        for name, pat in PATTERNS.items():
            data = (ct.pack_header(cfg, None) + ct.pack_config_frame(cfg, 0, bytes(16))
                    + pat * (args.kbytes * 1000 // len(pat)) + ct.pack_audio_frame(1, bytes(16)))
            with open(path, "wb") as fh:
                fh.write(data)
            for _ in range(2):                 # the first run compiles/loads the kernels
                t = time.perf_counter()
                dec = Decoder()
                for i in range(0, len(data), 8192):
                    dec.feed(data[i:i + 8192])
                dec.finish()
                t_dec = time.perf_counter() - t
                t = time.perf_counter()
                pacodec.info(path)
                t_info = time.perf_counter() - t
            print(f"{name:36s} decode {t_dec / len(data) * 1e6:6.3f} us/byte   "
                  f"info {t_info / len(data) * 1e6:6.3f} us/byte")


if __name__ == "__main__":
    main()
