"""Encode an audio file to .pac and back, printing size and bitrate.

    python examples/encode_file.py INPUT.wav [KBPS]
"""
import os
import sys
import tempfile

import soundfile as sf

import pacodec


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    kbps = float(sys.argv[2]) if len(sys.argv) > 2 else 128.0
    x, fs = sf.read(src, always_2d=True)
    with tempfile.TemporaryDirectory() as tmp:
        pac = os.path.join(tmp, "out.pac")
        pacodec.write(pac, x, fs, bitrate=kbps)
        size = os.path.getsize(pac)
        y, _ = pacodec.read(pac)
    secs = len(x) / fs
    print(f"{src}: {secs:.2f} s -> {size} bytes ({8 * size / secs / 1000:.1f} kbit/s), "
          f"decoded {len(y)} of {len(x)} samples")


if __name__ == "__main__":
    main()
