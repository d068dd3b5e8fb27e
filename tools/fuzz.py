#!/usr/bin/env python3
"""Fuzz the pacodec decoder: mutated, truncated, spliced and random streams made from real files.

    python tools/fuzz.py --cases 100000 --seed 1            # 2 workers, prints the figures
    python tools/fuzz.py --cases 5000 --time-limit 120 --jobs 1 --out /tmp/fuzz

Seeds are real ``.pac`` streams encoded from the CC0 clips (``pacodec/data``, ``tests/data``) at many settings (stereo,
mono, 3 and 8 channels, 8..96 kHz, low delay, short blocks, every quantizer, CBR/ABR/VBR, sine and
KBD windows, known and unknown length, no header) plus the conformance vectors.  Each case is
derived deterministically from ``(seed, index)``: a target (``decode``, ``strict``, ``feed`` in
random chunks, ``packet``, ``unpack``, ``info``, ``pacfile`` with seeks) and an input made by 1-4
stacked mutations (bit flips, byte changes, insertions, deletions, truncation, splicing, frame
reordering, payload or header changes *with the CRC fixed* so the payload parser is reached,
metadata blocks (FORMAT.md §3.3) edited with their CRC fixed, with damaged lengths, removed,
duplicated, or inserted with hostile content such as a CRC-valid frame inside, random frames with
valid CRCs, pure random bytes).

The contract checked: a target returns float32 audio shaped ``(n, channels)`` with finite values
(or an ``Info``), or raises :class:`pacodec.FormatError`; a truncated stream warns at most once.
Anything else is a bug: another exception, an unexpected warning, bad output, a crash of the
process (a signal, e.g. a segfault in a numba kernel), a hang (no answer within ``--timeout``
seconds) or memory beyond ``--memory-mb`` (address-space limit of each worker).

Resources are measured per case and bounded (see ``check_bounds``; ``--no-bounds`` turns this
off): output bytes per input byte, the tracemalloc peak, and time linear in input and output.
A case beyond a bound is a finding ``bound:output``, ``bound:memory`` or ``bound:time``; the
report gives the largest of each.

Cases run in worker subprocesses; the parent is a watchdog that restarts a worker after a crash or
hang and records the case.  Every bug's input is written to ``--out`` (default
``fuzz-findings/``) as ``<outcome>-<seed>-<index>.json`` (target, hex input, traceback), ready to
become a regression test.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import queue
import resource
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pacodec  # noqa: E402
from pacodec import bitstream as bs  # noqa: E402
from pacodec.errors import FormatError  # noqa: E402

TARGETS = ("decode", "strict", "feed", "packet", "unpack", "info", "pacfile")
TARGET_WEIGHTS = np.array([30, 6, 14, 16, 4, 12, 18], dtype=float)
OK_OUTCOMES = ("ok", "warned", "format_error")

# --------------------------------------------------------------------------------------- seeds
#: name, clip, seconds, samplerate label, channel count, Encoder keyword arguments
SEED_SPECS = [
    ("s44_power_cbr96", "piano.flac", 0.40, 44100, 2, dict(bitrate=96, quantizer="power")),
    ("s44_drums_short", "amen_drums.flac", 0.45, 44100, 2, dict(bitrate=64, quantizer="power")),
    ("s48_lowdelay_mulaw", "piano.flac", 0.30, 48000, 2,
     dict(bitrate=96, low_delay=True, quantizer="mulaw", mu=1000)),
    ("m8k_uniform", "amen_drums.flac", 0.60, 8000, 1, dict(bitrate=16, quantizer="uniform")),
    ("c3_22k_mulaw", "piano.flac", 0.40, 22050, 3, dict(bitrate=96, quantizer="mulaw")),
    ("m96k_power_vbr", "piano.flac", 0.20, 96000, 1, dict(quality=5, quantizer="power")),
    ("s16k_power_abr", "amen_drums.flac", 0.50, 16000, 2,
     dict(bitrate=48, mode="abr", quantizer="power")),
    ("c8_32k_lowdelay_uniform", "piano.flac", 0.15, 32000, 8,
     dict(bitrate=256, low_delay=True, quantizer="uniform")),
    ("s44_kbd_lowrate_uniform", "amen_drums.flac", 0.40, 44100, 2,
     dict(bitrate=24, window_shape="kbd", quantizer="uniform")),
    ("s11k_mulaw_mu1", "piano.flac", 0.40, 11025, 2, dict(bitrate=32, quantizer="mulaw", mu=1)),
    ("c5_96k_power_maxhop", "amen_drums.flac", 0.12, 96000, 5,
     dict(bitrate=320, quantizer="power")),
    ("m12k_long_seekable", "piano.flac", 2.60, 12000, 1, dict(bitrate=12, quantizer="power")),
    ("s44_unknown_length", "amen_drums.flac", 0.35, 44100, 2, dict(bitrate=64, _unknown=True)),
    ("s44_headerless", "piano.flac", 0.30, 44100, 2, dict(bitrate=64, _headerless=True)),
    ("m8k_lowdelay_power_vbr", "amen_drums.flac", 0.5, 8000, 1,
     dict(quality=2, low_delay=True, quantizer="power")),
    # the metadata block (FORMAT.md §3.3): tags (unicode, a repeated key) and the loudness
    ("s22k_tags", "piano.flac", 0.50, 22050, 2, dict(bitrate=64, tags={
        "TITLE": "Fuzz ✓ Ünï — ピアノ", "ARTIST": ["A", "B"], "COMMENT": "two\nlines",
        "TRACKNUMBER": "1"})),
    ("m16k_tags_unknown_length", "amen_drums.flac", 0.40, 16000, 1,
     dict(bitrate=24, tags={"ALBUM": "x" * 300}, _unknown=True)),
]


def clip_path(name) -> Path:
    """A CC0 clip of the package (``pacodec/data``) or of the tests (``tests/data``)."""
    p = ROOT / "pacodec" / "data" / name
    return p if p.exists() else ROOT / "tests" / "data" / name


def _clip(name, nsamples, channels):
    import soundfile as sf
    x, fs = sf.read(clip_path(name), always_2d=True)
    x = x[int(0.1 * fs):int(0.1 * fs) + nsamples]
    cols = [x[:, 0], x[:, -1], 0.5 * (x[:, 0] - x[:, -1])]
    out = np.stack([cols[c % 3] * (1.0 - 0.1 * (c // 3)) for c in range(channels)], axis=1)
    return out


def make_seed(spec) -> bytes:
    name, clip, seconds, rate, ch, kwargs = spec
    kwargs = dict(kwargs)
    unknown = kwargs.pop("_unknown", False)
    headerless = kwargs.pop("_headerless", False)
    # the clip is only relabelled with another rate: content does not matter, the layout does
    x = _clip(clip, int(seconds * rate), ch)
    enc = pacodec.Encoder(rate, ch, total_frames=None if unknown else len(x), **kwargs)
    parts = enc.encode(x)
    parts += enc.flush()
    # the header last: after flush its metadata block holds the loudness (same size)
    return (b"" if headerless else enc.header()) + b"".join(parts)


def make_seeds(cache_dir: str | os.PathLike | None = None, vectors: bool = True) -> dict:
    """All seed streams by name (cached as ``NAME.pac`` in ``cache_dir`` when given)."""
    seeds = {}
    cache = Path(cache_dir) if cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    for spec in SEED_SPECS:
        p = cache / f"{spec[0]}.pac" if cache else None
        if p is not None and p.exists():
            seeds[spec[0]] = p.read_bytes()
            continue
        data = make_seed(spec)
        seeds[spec[0]] = data
        if p is not None:
            p.write_bytes(data)
    if vectors:
        for p in sorted((ROOT / "bitstreams" / "vectors").glob("v*/*.pac")):
            data = p.read_bytes()
            try:                   # intact streams only: one vector is damaged on purpose
                split_frames(data)
            except (FormatError, AttributeError):
                continue
            seeds["vector_" + p.stem] = data
    return seeds


def split_frames(data: bytes):
    """(header and metadata bytes or b'', [frame bytes]) of a valid stream."""
    pos = bs.frames_start(data)
    head = data[:pos]
    frames = []
    while pos < len(data):
        fr = bs.parse_frame_at(data, pos)
        frames.append(bytes(data[pos:pos + fr.size]))
        pos += fr.size
    return head, frames


def frame_parts(frame: bytes):
    """(type, seq, payload) of a frame (CRC not checked)."""
    return frame[2] >> 6, frame[4], frame[bs.FRAME_HEADER_SIZE:-bs.CRC_SIZE]


# --------------------------------------------------------------------------------------- mutators
INTERESTING = bytes([0x00, 0xFF, 0xCA, 0x5E, 0x7F, 0x80, 0x01, 0x3F, 0xC0, 0x40])


def _rand_bytes(rng, n):
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def _pos(rng, data, end_bias=False):
    n = len(data)
    if n == 0:
        return 0
    return int(rng.integers(0, n + 1))


def mut_bitflip(rng, data, ctx):
    b = bytearray(data)
    if not b:
        return bytes(b)
    for _ in range(int(rng.integers(1, 17))):
        i = int(rng.integers(0, len(b)))
        b[i] ^= 1 << int(rng.integers(0, 8))
    return bytes(b)


def mut_bytes(rng, data, ctx):
    b = bytearray(data)
    if not b:
        return bytes(b)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(0, len(b)))
        b[i] = INTERESTING[int(rng.integers(0, len(INTERESTING)))] if rng.random() < 0.5 \
            else int(rng.integers(0, 256))
    return bytes(b)


def mut_insert(rng, data, ctx):
    i = _pos(rng, data)
    r = rng.random()
    if r < 0.3:
        ins = bs.SYNC_BYTES + _rand_bytes(rng, int(rng.integers(0, 6)))
    elif r < 0.6 and data:
        a = int(rng.integers(0, len(data)))
        ins = data[a:a + int(rng.integers(1, 2048))]
    else:
        ins = _rand_bytes(rng, int(rng.integers(1, 300)))
    return data[:i] + ins + data[i:]


def mut_delete(rng, data, ctx):
    if not data:
        return data
    i = int(rng.integers(0, len(data)))
    if rng.random() < 0.7:
        n = int(rng.integers(1, 64))
    else:
        n = int(rng.integers(1, max(2, len(data) // 3)))
    return data[:i] + data[i + n:]


def mut_truncate(rng, data, ctx):
    if not data:
        return data
    if rng.random() < 0.75:
        return data[:int(rng.integers(0, len(data)))]
    return data[int(rng.integers(0, len(data))):]          # joined mid-stream


def mut_splice(rng, data, ctx):
    other = ctx["seeds"][int(rng.integers(0, len(ctx["seeds"])))]
    a = _pos(rng, data)
    b = int(rng.integers(0, len(other) + 1))
    return data[:a] + other[b:]


def mut_frames(rng, data, ctx):
    """Drop, duplicate, swap or foreign-insert whole frames (CRCs intact)."""
    try:
        head, frames = split_frames(data)
    except Exception:
        return mut_bytes(rng, data, ctx)
    if not frames:
        return data
    op = int(rng.integers(0, 5))
    i = int(rng.integers(0, len(frames)))
    j = int(rng.integers(0, len(frames)))
    if op == 0:
        del frames[i:i + int(rng.integers(1, 8))]
    elif op == 1:
        frames[i:i] = [frames[j]] * int(rng.integers(1, 4))
    elif op == 2:
        frames[i], frames[j] = frames[j], frames[i]
    elif op == 3:
        other = ctx["seeds"][int(rng.integers(0, len(ctx["seeds"])))]
        try:
            _, of = split_frames(other)
        except Exception:
            of = []
        if of:
            frames.insert(i, of[int(rng.integers(0, len(of)))])
    else:
        frames = frames[i:] + frames[:i]
    return head + b"".join(frames)


def _mutate_payload(rng, payload: bytes) -> bytes:
    p = bytearray(payload)
    r = rng.random()
    if r < 0.45 and p:
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(p)))
            p[i] ^= 1 << int(rng.integers(0, 8))
    elif r < 0.65 and p:
        for _ in range(int(rng.integers(1, 6))):
            p[int(rng.integers(0, len(p)))] = int(rng.integers(0, 256))
    elif r < 0.8:
        p = p[:int(rng.integers(0, len(p) + 1))]
    elif r < 0.9:
        p += _rand_bytes(rng, int(rng.integers(1, 64)))
    else:
        # a random audio payload after the config prefix (if any)
        keep = 12 if len(p) >= 12 and rng.random() < 0.5 else 0
        p = p[:keep] + _rand_bytes(rng, int(rng.integers(0, 400)))
    return bytes(p[:bs.MAX_PAYLOAD])


def mut_payload_crc(rng, data, ctx):
    """Change a frame's payload (or type/seq) and fix its length and CRC: reaches the parser."""
    try:
        head, frames = split_frames(data)
    except Exception:
        return mut_bitflip(rng, data, ctx)
    if not frames:
        return data
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(0, len(frames)))
        ftype, seq, payload = frame_parts(frames[i])
        r = rng.random()
        if r < 0.8:
            payload = _mutate_payload(rng, payload)
        elif r < 0.9:
            ftype = int(rng.integers(0, 3))
        else:
            seq = int(rng.integers(0, 256))
        frames[i] = bs.pack_frame(ftype, seq, payload)
    return head + b"".join(frames)


def _fix_header_crc(h: bytearray):
    body = bytes(h[:bs.HEADER_SIZE - 2])
    h[bs.HEADER_SIZE - 2:bs.HEADER_SIZE] = bs.crc16(body).to_bytes(2, "big")


def _byte_change(rng, b):
    return int(rng.integers(0, 256)) if rng.random() < 0.5 else b ^ (1 << int(rng.integers(0, 8)))


def mut_config_crc(rng, data, ctx):
    """Change the header's or a config frame's config/length fields and fix the CRC."""
    if data[:4] == bs.MAGIC and len(data) >= bs.HEADER_SIZE and rng.random() < 0.5:
        h = bytearray(data[:bs.HEADER_SIZE])
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(4, bs.HEADER_SIZE - 2))
            h[i] = _byte_change(rng, h[i])
        _fix_header_crc(h)
        return bytes(h) + data[bs.HEADER_SIZE:]
    try:
        head, frames = split_frames(data)
    except Exception:
        return mut_bytes(rng, data, ctx)
    idx = [i for i, f in enumerate(frames) if frame_parts(f)[0] in (bs.FRAME_CONFIG, bs.FRAME_EOS)]
    if not idx:
        return data
    i = idx[int(rng.integers(0, len(idx)))]
    ftype, seq, payload = frame_parts(frames[i])
    p = bytearray(payload)
    if p:
        lim = min(len(p), 12)
        for _ in range(int(rng.integers(1, 3))):
            j = int(rng.integers(0, lim))
            p[j] = _byte_change(rng, p[j])
    frames[i] = bs.pack_frame(ftype, seq, bytes(p))
    return head + b"".join(frames)


def _fake_block(rng, ctx) -> bytes:
    """A metadata block: valid (random tags), or with hostile content and its CRC fixed."""
    r = rng.random()
    if r < 0.4:
        n = int(rng.integers(0, 6))
        tags = [(f"K{int(rng.integers(0, 9))}", "".join(chr(int(c)) for c in
                 rng.integers(1, 0x3000, int(rng.integers(0, 40))) if not 0xD800 <= c < 0xE000))
                for _ in range(n)]
        loud = None if rng.random() < 0.2 else float(rng.uniform(-80, 10))
        return bs.pack_metadata(bs.Metadata(tags, loud))
    if r < 0.7:
        # a sync word and a CRC-valid frame inside the block (invalid UTF-8: a damaged block)
        seeds = ctx["seeds"]
        try:
            _, frames = split_frames(seeds[int(rng.integers(0, len(seeds)))])
            inner = frames[int(rng.integers(0, len(frames)))]
        except Exception:
            inner = bs.pack_frame(0, 0, b"")
        body = bytes(3) + b"T=" + inner + b"\0"
    else:
        body = _rand_bytes(rng, int(rng.integers(0, 300)))
    body = body[:bs.META_MAX_BODY]
    blk = bs.META_MAGIC + bs._u7(len(body), 2) + body
    return blk + bs._u7(bs.crc16(blk), 3)


def mut_metadata(rng, data, ctx):
    """The metadata block: edited with its CRC fixed, its length or CRC damaged, removed,
    duplicated, or a new (possibly hostile) one inserted after the header."""
    if data[:4] != bs.MAGIC or len(data) < bs.HEADER_SIZE:
        return mut_bytes(rng, data, ctx)
    try:
        start = bs.frames_start(data)
    except Exception:
        start = bs.HEADER_SIZE
    head, block, rest = data[:bs.HEADER_SIZE], data[bs.HEADER_SIZE:start], data[start:]
    r = rng.random()
    if r < 0.3 or not block:
        return head + _fake_block(rng, ctx) + rest
    b = bytearray(block)
    if r < 0.55:                       # content edited, CRC fixed: the parser is reached
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(6, max(7, len(b) - 3)))
            if i < len(b) - 3:
                b[i] = _byte_change(rng, b[i])
        b[-3:] = bs._u7(bs.crc16(bytes(b[:-3])), 3)
    elif r < 0.7:                      # length field: any value, top bits included
        b[4:6] = _rand_bytes(rng, 2)
    elif r < 0.8:
        b[-1] ^= 1 << int(rng.integers(0, 8))
    elif r < 0.9:
        return head + block + block + rest
    else:
        return head + rest
    return head + bytes(b) + rest


MUTATORS = [(mut_bitflip, 14), (mut_bytes, 10), (mut_insert, 10), (mut_delete, 10),
            (mut_truncate, 10), (mut_splice, 6), (mut_frames, 8), (mut_payload_crc, 24),
            (mut_config_crc, 8), (mut_metadata, 6)]
_MUT_W = np.array([w for _, w in MUTATORS], dtype=float)


def random_stream(rng, ctx) -> bytes:
    """A stream from nothing: random bytes, or a real header/config followed by random frames with
    valid CRCs (random types, sequence numbers and payloads)."""
    r = rng.random()
    if r < 0.25:
        n = int(rng.integers(0, 3000))
        return _rand_bytes(rng, n)
    if r < 0.35:
        return bs.MAGIC + _rand_bytes(rng, int(rng.integers(0, 200)))
    base = ctx["seeds"][int(rng.integers(0, len(ctx["seeds"])))]
    head = base[:bs.HEADER_SIZE] if base[:4] == bs.MAGIC else b""
    cfg_block = None
    try:
        _, frames = split_frames(base)
        cfg_block = frame_parts(frames[0])[2][:bs.CONFIG_SIZE]
    except Exception:
        pass
    out = [head if rng.random() < 0.8 else b""]
    seq = int(rng.integers(0, 256))
    for _ in range(int(rng.integers(0, 30))):
        t = int(rng.choice([0, 0, 0, 1, 1, 2]))
        if t == 1 and cfg_block is not None:
            index = int(rng.integers(0, 2 ** 32)) if rng.random() < 0.2 else seq
            payload = cfg_block + index.to_bytes(4, "big")
        elif t == 2:
            payload = int(rng.integers(0, 2 ** 40)).to_bytes(6, "big") if rng.random() < 0.8 \
                else _rand_bytes(rng, int(rng.integers(0, 10)))
            out.append(bs.pack_frame(2, seq, payload))
            seq = (seq + 1) & 0xFF
            continue
        else:
            payload = b""
        n = int(rng.integers(0, 600))
        body = _rand_bytes(rng, n)
        if rng.random() < 0.5:         # sparse payloads look like real ones (small max_band)
            body = bytes(b & int(rng.integers(0, 256)) for b in body)
        out.append(bs.pack_frame(t, seq, payload + body))
        if rng.random() < 0.9:
            seq = (seq + int(rng.integers(1, 3))) & 0xFF
        else:
            seq = int(rng.integers(0, 256))
        if rng.random() < 0.1:
            out.append(_rand_bytes(rng, int(rng.integers(1, 40))))
    return b"".join(out)


def mutate_stream(rng, ctx) -> bytes:
    if rng.random() < 0.12:
        return random_stream(rng, ctx)
    names = ctx["names"]
    data = ctx["seeds"][int(rng.integers(0, len(names)))]
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3, 4]))):
        f = MUTATORS[int(rng.choice(len(MUTATORS), p=_MUT_W / _MUT_W.sum()))][0]
        data = f(rng, data, ctx)
    return data


def mutate_packets(rng, ctx) -> list:
    """A list of frames for packet mode (b'' = a lost packet, decoded as ``None``)."""
    data = ctx["seeds"][int(rng.integers(0, len(ctx["seeds"])))]
    try:
        _, frames = split_frames(data)
    except Exception:
        frames = []
    frames = frames[:int(rng.integers(1, 40))] if frames else []
    for _ in range(int(rng.integers(1, 6))):
        if not frames:
            frames.append(_rand_bytes(rng, int(rng.integers(0, 200))))
            continue
        i = int(rng.integers(0, len(frames)))
        r = rng.random()
        if r < 0.15:
            frames[i] = b""
        elif r < 0.25:
            frames.insert(i, frames[int(rng.integers(0, len(frames)))])
        elif r < 0.3:
            frames.insert(i, _rand_bytes(rng, int(rng.integers(0, 100))))
        else:
            f = [mut_bitflip, mut_bytes, mut_truncate, mut_payload_crc, mut_payload_crc,
                 mut_config_crc, mut_insert, mut_delete][int(rng.integers(0, 8))]
            frames[i] = f(rng, frames[i], ctx)
    return frames


def make_case(seed: int, index: int, ctx) -> dict:
    """The case ``index`` of run ``seed``: ``{"target", "data" (bytes or list), "ops"}``."""
    rng = np.random.default_rng([seed, index])
    target = TARGETS[int(rng.choice(len(TARGETS), p=TARGET_WEIGHTS / TARGET_WEIGHTS.sum()))]
    case = {"target": target, "ops": []}
    if target == "packet":
        case["data"] = mutate_packets(rng, ctx)
    elif target == "unpack":
        frames = mutate_packets(rng, ctx)
        pk = [bs.pack_packet(int(rng.integers(1, 2 ** 32)), int(rng.integers(0, 2 ** 32)),
                            int(rng.integers(0, 2 ** 32)), f) for f in frames]
        for i in range(len(pk)):
            if rng.random() < 0.3:
                pk[i] = mut_bytes(rng, pk[i][:int(rng.integers(0, len(pk[i]) + 1))], ctx)
        case["data"] = pk
    else:
        case["data"] = mutate_stream(rng, ctx)
        if target == "feed":
            case["ops"] = [int(x) for x in rng.integers(1, 4096, int(rng.integers(1, 12)))]
        elif target == "pacfile":
            ops = []
            for _ in range(int(rng.integers(1, 5))):
                r = rng.random()
                if r < 0.45:
                    ops.append(["seek", int(rng.integers(0, 200000))])
                elif r < 0.55:
                    ops.append(["seek_time", float(rng.random() * 4)])
                elif r < 0.85:
                    ops.append(["read", int(rng.integers(-1, 30000))])
                else:
                    ops.append(["blocks", int(rng.integers(1, 5000))])
            case["ops"] = ops
    return case


# --------------------------------------------------------------------------------------- targets
class BadOutput(AssertionError):
    pass


_OUT = [0]          # bytes of audio the current case produced (every array _check_audio sees)


def _check_audio(y, channels):
    _OUT[0] += getattr(y, "nbytes", 0)
    if not isinstance(y, np.ndarray) or y.dtype != np.float32 or y.ndim != 2:
        raise BadOutput(f"output is not a float32 2-D array: {type(y)} {getattr(y, 'dtype', '')} "
                        f"{getattr(y, 'shape', '')}")
    if channels is not None and len(y) and y.shape[1] != channels:
        raise BadOutput(f"output has {y.shape[1]} channels, stream has {channels}")
    if not np.isfinite(y).all():
        raise BadOutput("output holds NaN or infinite samples")


def _run_decode(data, strict=False):
    y, rate = pacodec.decode(data, strict=strict)
    _check_audio(y, None)
    if rate not in pacodec.SUPPORTED_RATES:
        raise BadOutput(f"sample rate {rate}")
    return y


def _run_feed(data, chunks):
    dec = pacodec.Decoder()
    outs = []
    pos = 0
    k = 0
    while pos < len(data):
        n = chunks[k % len(chunks)]
        outs.append(dec.feed(data[pos:pos + n]))
        pos += n
        k += 1
    outs.append(dec.finish())
    for o in outs:
        _check_audio(o, dec.channels)
    outs = [o for o in outs if len(o)]
    y = np.concatenate(outs) if outs else np.zeros((0, dec.channels), np.float32)
    # chunking must not change the result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ref, _ = pacodec.decode(data)
        except FormatError:
            ref = None
    if ref is not None and (ref.shape != y.shape or not np.array_equal(ref, y)):
        raise BadOutput(f"chunked decoding differs from one-shot decoding "
                        f"({y.shape} vs {ref.shape})")
    return y


def _run_packets(frames):
    dec = pacodec.Decoder()
    for f in frames:
        y = dec.decode_packet(f if f else None)
        _check_audio(y, dec.channels)
        if dec.config is not None and len(y) not in (0, dec.frame_size):
            raise BadOutput(f"packet output of {len(y)} samples (frame size {dec.frame_size})")


def _run_unpack(packets):
    dec = pacodec.Decoder()
    for p in packets:
        try:
            pk = bs.unpack_packet(p)
        except FormatError:
            y = dec.decode_packet(None)
        else:
            if not (0 < pk.session < 2 ** 32 and 0 <= pk.seq < 2 ** 32 and 0 <= pk.timestamp < 2 ** 32):
                raise BadOutput("packet fields out of range")
            y = dec.decode_packet(pk.frame)
        _check_audio(y, dec.channels)


def _run_info(data):
    i = pacodec.info(io.BytesIO(data))
    if not isinstance(i, pacodec.Info):
        raise BadOutput("info() did not return an Info")
    for p in i.problems:
        if not isinstance(p, str):
            raise BadOutput("problem is not a string")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in i.tags.items()):
        raise BadOutput("tags are not strings")
    if (i.loudness is None) != (i.gain is None):
        raise BadOutput("loudness without gain or gain without loudness")
    json.dumps(i.as_dict())


def _run_pacfile(data, ops):
    with pacodec.PacFile(io.BytesIO(data)) as f:
        for op, arg in ops:
            if op == "seek":
                p = f.seek(arg)
                if p != f.tell():
                    raise BadOutput("tell() after seek()")
            elif op == "seek_time":
                f.seek_time(arg)
            elif op == "read":
                y = f.read(arg)
                _check_audio(y, f.channels)
                if arg >= 0 and len(y) > arg:
                    raise BadOutput("read() returned more than asked")
            else:
                for b in f.blocks(arg):
                    _check_audio(b, f.channels)
                    if len(b) > arg:
                        raise BadOutput("block larger than blocksize")


# --------------------------------------------------------------------------------------- bounds
#: Resource bounds every case must keep (``run_measured``; the fuzzer fails a case beyond them).
#: Output: a frame is at least MIN_FRAME_BYTES long and yields at most (1 + CONCEAL_FREE) hops
#: (itself plus the concealment of the frames its bytes could have held) of at most 2048 samples
#: x 8 channels of float32 -- the format's own worst case, 73 728 bytes per input byte (a lost
#: packet counts as MIN_FRAME_BYTES of input).  Memory (tracemalloc peak: Python and numpy
#: allocations; numba's and LLVM's own are not traced): 300 MB for the streaming targets
#: (packets, info, PacFile reads, which never hold more than a block), and for the targets that
#: return everything by design (decode, strict, feed) 300 MB plus 4 bytes per output byte (the
#: result and the copies of its concatenation).  Time: 50 ms plus 100 us per input byte plus
#: 0.1 us per output byte of the process's CPU time -- linear in input and output (CPU time, not
#: wall time, so that a loaded machine does not fail cases; hangs are caught by --timeout).
from pacodec.decoder import CONCEAL_FREE, MIN_FRAME_BYTES  # noqa: E402

MAX_OUT_PER_BYTE = (1 + CONCEAL_FREE) * 2048 * 8 * 4 // MIN_FRAME_BYTES
MAX_PEAK = 300 * 2 ** 20
WHOLE_RESULT_TARGETS = ("decode", "strict", "feed")
TIME_FIXED, TIME_PER_BYTE, TIME_PER_OUT_BYTE = 0.050, 100e-6, 0.1e-6


def input_bytes(case) -> int:
    """Input size for the bounds: bytes, a lost packet counting as MIN_FRAME_BYTES."""
    d = case["data"]
    if isinstance(d, (bytes, bytearray)):
        return len(d)
    return sum(max(len(x), MIN_FRAME_BYTES) for x in d)


def check_bounds(case, seconds, peak, out_bytes, time_bound=True):
    """The bound a case passes (outcome ``bound:<what>``, detail), or None."""
    n = input_bytes(case)
    if out_bytes > MAX_OUT_PER_BYTE * max(n, 1):
        return "bound:output", (f"{out_bytes} output bytes from {n} input bytes "
                                f"(bound {MAX_OUT_PER_BYTE} per byte)")
    limit = MAX_PEAK + (4 * out_bytes if case["target"] in WHOLE_RESULT_TARGETS else 0)
    if peak is not None and peak > limit:
        return "bound:memory", f"peak {peak / 2**20:.1f} MB (bound {limit / 2**20:.1f} MB)"
    t = TIME_FIXED + TIME_PER_BYTE * n + TIME_PER_OUT_BYTE * out_bytes
    if time_bound and seconds > t:
        return "bound:time", f"{seconds * 1000:.1f} ms of CPU (bound {t * 1000:.1f} ms)"
    return None


def run_measured(case, time_bound=True):
    """``run_case`` with its resources measured and bounded -> (outcome, detail, measures).

    ``measures``: seconds, tracemalloc peak above the start (bytes), output bytes.  A case
    that is otherwise fine but passes a bound gets the outcome ``bound:<what>``."""
    import tracemalloc
    if not tracemalloc.is_tracing():
        tracemalloc.start()
    tracemalloc.clear_traces()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    _OUT[0] = 0
    t0, c0 = time.perf_counter(), time.process_time()
    outcome, detail = run_case(case)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1] - base
    m = {"t": dt, "cpu": cpu, "m": peak, "ob": _OUT[0]}
    if outcome in OK_OUTCOMES:
        bad = check_bounds(case, cpu, peak, _OUT[0], time_bound)
        if bad is not None:
            outcome, detail = bad
    return outcome, detail, m


def run_case(case) -> tuple[str, str]:
    """Run one case in this process -> (outcome, detail).

    Outcomes: ``ok``, ``warned`` (truncation warning), ``format_error`` (all fine), or a bug:
    ``bug:<ExceptionType>``, ``bad_output``, ``warning:<Category>``, ``multiple_warnings``.
    """
    target, data, ops = case["target"], case["data"], case.get("ops", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if target == "decode":
                _run_decode(data)
            elif target == "strict":
                _run_decode(data, strict=True)
            elif target == "feed":
                _run_feed(data, ops)
            elif target == "packet":
                _run_packets(data)
            elif target == "unpack":
                _run_unpack(data)
            elif target == "info":
                _run_info(data)
            elif target == "pacfile":
                _run_pacfile(data, ops)
            else:
                raise ValueError(target)
        except FormatError as e:
            outcome, detail = "format_error", str(e)
        except BadOutput as e:
            outcome, detail = "bad_output", str(e)
        except MemoryError:
            outcome, detail = "bug:MemoryError", traceback.format_exc()
        except Exception as e:
            outcome, detail = f"bug:{type(e).__name__}", traceback.format_exc()
        else:
            outcome, detail = "ok", ""
    ours = [w for w in caught if str(w.message).startswith("pacodec:")]
    other = [w for w in caught if not str(w.message).startswith("pacodec:")]
    if other:
        return f"warning:{other[0].category.__name__}", str(other[0].message)
    # each problem warned once per stream (the feed target decodes twice); distinct problems
    # (a contradicting header config and a truncation) warn once each
    msgs = [str(w.message) for w in ours]
    if any(msgs.count(m) > (2 if target == "feed" else 1) for m in set(msgs)):
        return "multiple_warnings", "; ".join(str(w.message) for w in ours)
    if outcome == "ok" and ours:
        return "warned", str(ours[0].message)
    return outcome, detail


def case_size(case) -> int:
    d = case["data"]
    return len(d) if isinstance(d, (bytes, bytearray)) else sum(len(x) for x in d)


def case_to_json(case) -> dict:
    d = case["data"]
    return {"target": case["target"], "ops": case.get("ops", []),
            "data": d.hex() if isinstance(d, (bytes, bytearray)) else [x.hex() for x in d]}


def case_from_json(obj) -> dict:
    """A case from its JSON form: ``data`` as hex (a list of hex strings for packet targets), or
    ``recipe`` = {head, unit, count, tail} (hex; ``head + unit * count + tail``) for the large
    crafted inputs of tests/regressions that would not fit a file as hex."""
    d = obj.get("data")
    if "recipe" in obj:
        r = obj["recipe"]
        d = bytes.fromhex(r.get("head", "")) + bytes.fromhex(r["unit"]) * int(r["count"]) \
            + bytes.fromhex(r.get("tail", ""))
    elif isinstance(d, str):
        d = bytes.fromhex(d)
    else:
        d = [bytes.fromhex(x) for x in d]
    return {"target": obj["target"], "ops": obj.get("ops", []), "data": d}


# --------------------------------------------------------------------------------------- minimize
def _valid_frame_spans(data: bytes):
    """[(start, end)] of the CRC-valid frames of ``data`` plus the bytes between, in order."""
    spans, pos, last = [], 0, 0
    if data[:4] == bs.MAGIC:
        spans.append((0, min(len(data), bs.HEADER_SIZE)))
        pos = last = spans[-1][1]
    while True:
        p = bs.find_sync(data, pos)
        if p < 0:
            break
        try:
            fr = bs.parse_frame_at(data, p)
        except FormatError:
            fr = None
        if fr is None:
            pos = p + 1
            continue
        if p > last:
            spans.append((last, p))
        spans.append((p, p + fr.size))
        pos = last = p + fr.size
    if last < len(data):
        spans.append((last, len(data)))
    return spans


def minimize(case, keep, budget_s: float = 120.0):
    """Shrink ``case`` while ``keep(case)`` stays true: drop ops, list items, whole frames (CRCs
    stay valid), then byte ranges."""
    t0 = time.time()
    case = dict(case)

    def ok(c):
        return time.time() - t0 < budget_s and keep(c)

    ops = list(case.get("ops", []))
    i = 0
    while i < len(ops):
        c = dict(case, ops=ops[:i] + ops[i + 1:])
        if ops[i + 1:] or i or c["target"] != "feed":
            if ok(c):
                ops = c["ops"]
                case = c
                continue
        i += 1
    if isinstance(case["data"], list):
        items = list(case["data"])
        i = 0
        while i < len(items):
            c = dict(case, data=items[:i] + items[i + 1:])
            if ok(c):
                items = c["data"]
                case = c
            else:
                i += 1
        return case
    data = case["data"]
    # whole frames / gaps
    spans = _valid_frame_spans(data)
    i = 0
    while i < len(spans):
        cand = b"".join(data[a:b] for j, (a, b) in enumerate(spans) if j != i)
        if ok(dict(case, data=cand)):
            data = cand
            spans = _valid_frame_spans(data)
        else:
            i += 1
    # shorter payloads (CRC fixed)
    spans = _valid_frame_spans(data)
    for i in range(len(spans)):
        a, b = spans[i]
        frame = data[a:b]
        if frame[:2] != bs.SYNC_BYTES:
            continue
        ftype, seq, payload = frame_parts(frame)
        keep_n = 12 if ftype == bs.FRAME_CONFIG else 0
        n = len(payload)
        while n > keep_n:
            m = keep_n + (n - keep_n) // 2
            cand_frame = bs.pack_frame(ftype, seq, payload[:m])
            cand = data[:a] + cand_frame + data[b:]
            if ok(dict(case, data=cand)):
                data, payload, n = cand, payload[:m], m
                spans = _valid_frame_spans(data)
                a, b = spans[i]
            else:
                break
    # byte ranges
    chunk = max(1, len(data) // 4)
    while chunk >= 1:
        i = 0
        changed = False
        while i < len(data):
            cand = data[:i] + data[i + chunk:]
            if ok(dict(case, data=cand)):
                data = cand
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    return dict(case, data=data)


def same_outcome(outcome: str):
    def keep(c):
        return run_case(c)[0] == outcome
    return keep


# --------------------------------------------------------------------------------------- worker
def worker(args):
    if args.memory_mb:
        lim = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    seeds = make_seeds(args.seed_dir)
    ctx = {"seeds": list(seeds.values()), "names": list(seeds)}
    # warm up (kernels, lazy imports, layouts) so start-up is not counted as decode time
    for i in range(40):
        run_case(make_case(args.seed ^ 0x5A5A, i, ctx))
    if not args.no_bounds:
        import tracemalloc
        tracemalloc.start()
    out = sys.stdout
    for index in range(args.start, args.stop):
        case = make_case(args.seed, index, ctx)
        out.write(f"S {index}\n")
        out.flush()
        if index == args.inject_crash:                 # --selftest: the watchdog must see these
            os.kill(os.getpid(), __import__("signal").SIGSEGV)
        if index == args.inject_hang:
            time.sleep(10 ** 6)
        if args.no_bounds:
            _OUT[0] = 0
            t0 = time.perf_counter()
            outcome, detail = run_case(case)
            m = {"t": time.perf_counter() - t0, "m": None, "ob": _OUT[0]}
        else:
            outcome, detail, m = run_measured(case)
        out.write(json.dumps({"i": index, "o": outcome, "n": case_size(case), "ni":
                              input_bytes(case), "g": case["target"], "d": detail[-2000:],
                              **m}) + "\n")
        out.flush()


# --------------------------------------------------------------------------------------- parent
class Stats:
    def __init__(self):
        self.outcomes = Counter()
        self.by_target = Counter()
        self.cases = 0
        self.max_time = (0.0, None, 0)
        self.max_tpb = (0.0, None, 0)       # seconds per byte, inputs >= 256 bytes
        self.max_peak = (0, None, 0)        # tracemalloc peak (bytes)
        self.max_peak_stream = (0, None, 0)  # the same, streaming targets only
        self.max_opb = (0.0, None, 0)       # output bytes per input byte
        self.out_bytes = 0
        self.bytes = 0
        self.findings = []
        self.lock = threading.Lock()

    def add(self, rec):
        with self.lock:
            self.cases += 1
            self.outcomes[rec["o"]] += 1
            self.by_target[(rec["g"], rec["o"] if rec["o"] in OK_OUTCOMES else "BUG")] += 1
            self.bytes += rec["n"]
            if rec["o"] not in OK_OUTCOMES:      # hangs and crashes are findings, not timings
                return
            if rec["t"] > self.max_time[0]:
                self.max_time = (rec["t"], rec["i"], rec["n"])
            if rec["n"] >= 256 and rec["t"] / rec["n"] > self.max_tpb[0]:
                self.max_tpb = (rec["t"] / rec["n"], rec["i"], rec["n"])
            peak = rec.get("m")
            if peak is not None:
                if peak > self.max_peak[0]:
                    self.max_peak = (peak, rec["i"], rec["n"])
                if rec["g"] not in WHOLE_RESULT_TARGETS and peak > self.max_peak_stream[0]:
                    self.max_peak_stream = (peak, rec["i"], rec["n"])
            ob = rec.get("ob", 0)
            self.out_bytes += ob
            ni = max(rec.get("ni", rec["n"]), 1)
            if ob / ni > self.max_opb[0]:
                self.max_opb = (ob / ni, rec["i"], rec["n"])


def _spawn(args, start, stop):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--seed", str(args.seed),
           "--start", str(start), "--stop", str(stop), "--seed-dir", str(args.seed_dir),
           "--memory-mb", str(args.memory_mb), "--inject-crash", str(args.inject_crash),
           "--inject-hang", str(args.inject_hang)] + (["--no-bounds"] if args.no_bounds else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1)


def _reader(proc, q):
    for line in proc.stdout:
        q.put(line)
    q.put(None)


def run_batch(args, start, stop, stats, ctx, deadline):
    """Run cases [start, stop) in worker processes, restarting after a crash or a hang."""
    nxt = start
    while nxt < stop and time.time() < deadline:
        proc = _spawn(args, nxt, stop)
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc, q), daemon=True).start()
        current = None
        started_at = None
        startup = time.time()
        while True:
            try:
                line = q.get(timeout=1.0)
            except queue.Empty:
                now = time.time()
                if current is not None and now - started_at > args.timeout:
                    proc.kill()
                    proc.wait()
                    rec = {"i": current, "o": "hang", "t": now - started_at, "n": 0, "g": "?",
                           "d": f"no answer within {args.timeout} s"}
                    _record_finding(args, rec, stats, ctx)
                    nxt = current + 1
                    break
                if current is None and now - startup > 600:
                    proc.kill()
                    raise RuntimeError("worker did not start")
                if time.time() > deadline + args.timeout:
                    proc.kill()
                    proc.wait()
                    return
                continue
            if line is None:
                rc = proc.wait()
                if current is not None:
                    rec = {"i": current, "o": f"crash:rc={rc}", "t": time.time() - started_at,
                           "n": 0, "g": "?", "d": proc.stderr.read()[-3000:]}
                    _record_finding(args, rec, stats, ctx)
                    nxt = current + 1
                elif rc != 0:
                    raise RuntimeError(f"worker failed: {proc.stderr.read()[-3000:]}")
                else:
                    nxt = stop
                break
            if line.startswith("S "):
                current = int(line[2:])
                started_at = time.time()
                if started_at > deadline:
                    proc.kill()
                    proc.wait()
                    return
                continue
            rec = json.loads(line)
            current = None
            if rec["o"] in OK_OUTCOMES:
                stats.add(rec)
            else:
                _record_finding(args, rec, stats, ctx)
            nxt = rec["i"] + 1
        proc.stdout.close()
        proc.stderr.close()


def _record_finding(args, rec, stats, ctx):
    case = make_case(args.seed, rec["i"], ctx)
    rec["n"] = case_size(case)
    rec["g"] = case["target"]
    stats.add(rec)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = rec["o"].replace(":", "_").replace("=", "")
    path = out / f"{name}-{args.seed}-{rec['i']}.json"
    path.write_text(json.dumps({"outcome": rec["o"], "detail": rec["d"], "seed": args.seed,
                                "index": rec["i"], **case_to_json(case)}, indent=1))
    with stats.lock:
        stats.findings.append((rec["o"], rec["i"], case["target"], rec["n"], str(path)))
    print(f"  FOUND {rec['o']} at case {rec['i']} ({case['target']}, {rec['n']} bytes) -> {path}",
          file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10000, help="number of cases (default 10000)")
    ap.add_argument("--seed", type=int, default=1, help="run seed: case i is (seed, i)")
    ap.add_argument("--first", type=int, default=0, help="index of the first case")
    ap.add_argument("--time-limit", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--batch", type=int, default=2000, help="cases per worker process")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before a case is a hang")
    ap.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per worker")
    ap.add_argument("--out", default="fuzz-findings", help="directory for the inputs of bugs")
    ap.add_argument("--seed-dir", default=None, help="cache of the seed streams")
    ap.add_argument("--no-bounds", action="store_true",
                    help="do not measure memory (tracemalloc) nor enforce the resource bounds")
    ap.add_argument("--replay", metavar="JSON", help="run one finding file in this process")
    ap.add_argument("--minimize", metavar="JSON", help="shrink a finding (same outcome) and "
                    "write it beside as NAME.min.json")
    ap.add_argument("--selftest", action="store_true",
                    help="check the watchdog: case first+3 crashes (SIGSEGV), first+7 hangs")
    ap.add_argument("--inject-crash", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--inject-hang", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--stop", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.minimize:
        obj = json.loads(Path(args.minimize).read_text())
        case = case_from_json(obj)
        small = minimize(case, same_outcome(obj["outcome"]))
        out = Path(args.minimize).with_suffix(".min.json")
        out.write_text(json.dumps({**obj, **case_to_json(small),
                                   "detail": run_case(small)[1]}, indent=1))
        print(f"{case_size(case)} -> {case_size(small)} bytes: {out}")
        return 0
    if args.replay:
        case = case_from_json(json.loads(Path(args.replay).read_text()))
        if args.no_bounds:
            print(run_case(case))
        else:
            run_case(case)             # first use (numba cache, tables) is not the case's cost
            print(run_measured(case))
        return 0
    if args.seed_dir is None:
        import tempfile
        args.seed_dir = os.path.join(tempfile.gettempdir(), f"pacodec-fuzz-seeds-{os.getuid()}")
    if args.worker:
        worker(args)
        return 0
    if args.selftest:
        args.inject_crash, args.inject_hang = args.first + 3, args.first + 7
        args.timeout = min(args.timeout, 5.0)
    t0 = time.time()
    seeds = make_seeds(args.seed_dir)
    ctx = {"seeds": list(seeds.values()), "names": list(seeds)}
    print(f"{len(seeds)} seed streams ({sum(map(len, seeds.values()))} bytes) in {args.seed_dir}",
          file=sys.stderr)
    deadline = t0 + args.time_limit if args.time_limit else float("inf")
    stats = Stats()
    batches = queue.Queue()
    for s in range(args.first, args.first + args.cases, args.batch):
        batches.put((s, min(s + args.batch, args.first + args.cases)))

    def job():
        while time.time() < deadline:
            try:
                a, b = batches.get_nowait()
            except queue.Empty:
                return
            run_batch(args, a, b, stats, ctx, deadline)
            print(f"  [{time.time() - t0:7.1f} s] {stats.cases} cases, "
                  f"{sum(v for k, v in stats.outcomes.items() if k not in OK_OUTCOMES)} bugs",
                  file=sys.stderr, flush=True)

    threads = [threading.Thread(target=job) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    report(args, stats, elapsed)
    if args.selftest:
        got = sorted((o.split(":")[0], i) for o, i, *_ in stats.findings)
        want = [("crash", args.first + 3), ("hang", args.first + 7)]
        print(f"selftest: {'passed' if got == want and stats.cases == args.cases else 'FAILED'} "
              f"(recorded {got}, {stats.cases} of {args.cases} cases)")
        return 0 if got == want and stats.cases == args.cases else 1
    return 1 if stats.findings else 0


def report(args, stats, elapsed):
    print(f"pacodec fuzz: seed {args.seed}, {stats.cases} cases in {elapsed:.0f} s "
          f"({stats.cases / max(elapsed, 1e-9):.0f}/s, {args.jobs} jobs), "
          f"{stats.bytes / 1e6:.1f} MB of input")
    print("outcomes:")
    for k, v in sorted(stats.outcomes.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<24} {v:>8}  ({100 * v / max(stats.cases, 1):.1f} %)")
    print("per target (cases: ok / warned / format_error / BUG):")
    for t in TARGETS:
        row = [stats.by_target[(t, o)] for o in (*OK_OUTCOMES, "BUG")]
        print(f"  {t:<8} {sum(row):>7}: " + " / ".join(str(r) for r in row))
    mt, mi, mn = stats.max_time
    print(f"longest case: {mt * 1000:.1f} ms (case {mi}, {mn} bytes)")
    tpb, ti, tn = stats.max_tpb
    print(f"longest time per byte (inputs >= 256 bytes): {tpb * 1e6:.2f} us/byte "
          f"(case {ti}, {tn} bytes)")
    if stats.max_peak[1] is not None:
        for label, (pk, pi, pn) in (("all targets", stats.max_peak),
                                    ("streaming targets", stats.max_peak_stream)):
            print(f"largest memory peak ({label}, tracemalloc): {pk / 2**20:.1f} MB "
                  f"(case {pi}, {pn} bytes)")
    ob, oi, on = stats.max_opb
    print(f"largest output per input byte: {ob:.0f} bytes/byte (case {oi}, {on} bytes; "
          f"{stats.out_bytes / 2**20:.0f} MB of audio in all)")
    if not args.no_bounds:
        print(f"bounds enforced: output <= {MAX_OUT_PER_BYTE} bytes per input byte; peak <= "
              f"{MAX_PEAK >> 20} MB (+ 4 x output for decode/strict/feed); time <= "
              f"{TIME_FIXED * 1000:g} ms + {TIME_PER_BYTE * 1e6:g} us/input byte + "
              f"{TIME_PER_OUT_BYTE * 1e6:g} us/output byte of CPU time")
    if stats.findings:
        print(f"{len(stats.findings)} finding(s) written to {args.out}/:")
        for o, i, t, n, p in sorted(stats.findings, key=lambda f: f[1]):
            print(f"  {o:<24} case {i:<8} {t:<8} {n:>7} bytes  {p}")
    else:
        print("no crash, hang, unexpected exception or bad output")


if __name__ == "__main__":
    sys.exit(main())
