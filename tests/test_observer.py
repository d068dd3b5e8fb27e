"""The encoder's observer (``Encoder(observer=fn)``): one record per frame, after its payload is
written, that tools build on (tools/bitstats.py, tools/train_huffman.py); it never changes the
stream."""
import numpy as np
import pytest

from pacodec import container as ct
from pacodec.encoder import Encoder
from pacodec.observer import FrameRecord


def signal(fs=44100, seconds=1.0):
    rng = np.random.default_rng(5)
    t = np.arange(int(fs * seconds)) / fs
    x = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)], axis=1)
    x += 0.02 * rng.standard_normal(x.shape)
    x[fs // 2:fs // 2 + 200] += 0.8 * rng.standard_normal((200, 2))      # an attack: short frames
    return x


@pytest.mark.parametrize("options", [dict(quality=5), dict(bitrate=64), dict(abr=96)])
def test_one_record_per_frame_and_the_stream_is_unchanged(options):
    x = signal()
    records = []

    def watch(r):
        assert isinstance(r, FrameRecord)
        nunits = r.nbands * r.ngroups
        records.append((r.index, r.is_short, r.payload_bits, r.books[:, :nunits].copy(),
                        r.sf[:, :nunits].copy(), r.max_band.copy()))

    plain = Encoder(44100, 2, **options)
    watched = Encoder(44100, 2, observer=watch, **options)
    frames = watched.encode(x) + watched.flush()
    assert frames == plain.encode(x) + plain.flush()
    assert [r[0] for r in records] == list(range(len(frames) - 1))      # not the EOS frame
    assert any(r[1] for r in records) and not all(r[1] for r in records)
    for (index, is_short, bits, books, sf, max_band), frame in zip(records, frames):
        ftype = frame[2] >> 6
        coded = len(frame) - ct.frame_overhead(ftype)
        if "quality" in options:               # VBR: no stuffing, the payload is the bits
            assert coded == (bits + 7) // 8
        else:
            assert coded >= (bits + 7) // 8
        assert books.min() >= 0 and books.max() <= 7 and max_band.max() <= books.shape[1]


def test_the_observer_can_be_set_on_an_existing_encoder():
    enc = Encoder(48000, 1, bitrate=48)
    seen = []
    enc.observer = lambda r: seen.append(r.payload_bits)
    frames = enc.encode(signal(48000)[:9600, :1]) + enc.flush()
    assert len(seen) == len(frames) - 1 and all(b > 0 for b in seen)
