"""Compress a numpy array in memory and decode it again (e.g. to shrink an audio data set)."""
import numpy as np

import pacodec

fs = 48000
t = np.arange(2 * fs) / fs
x = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3

data = pacodec.encode(x, fs, bitrate=96)            # bytes: store them anywhere
y, rate = pacodec.decode(data)

print(f"{x.nbytes} bytes of float64 -> {len(data)} bytes ({x.nbytes / len(data):.0f}x smaller)")
print(f"decoded {y.shape} at {rate} Hz, max error {np.max(np.abs(y - x)):.4f}")

# streaming: feed blocks of any size, collect frames as they complete
enc = pacodec.Encoder(fs, 2, bitrate=96)
frames = [enc.header()]
for block in np.array_split(x, 7):
    frames += enc.encode(block)
frames += enc.flush()
dec = pacodec.Decoder()
out = np.concatenate([dec.feed(f) for f in frames] + [dec.finish()])
print(f"streamed: {len(out)} samples, identical to one-shot: {np.array_equal(out, y)}")
