#!/usr/bin/env python3
"""Fuzz the pacodec decoder: mutated, truncated, spliced and random streams made from real files.

    python tools/fuzz.py --cases 100000 --seed 1            # 2 workers, prints the figures
    python tools/fuzz.py --cases 5000 --time-limit 120 --jobs 1 --out /tmp/fuzz
    python tools/fuzz.py --differential --cases 2000 --jobs 1   # against independent_decoder.py

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

``--differential`` checks another contract on the same mutated byte streams: each is decoded by
``pacodec.decode`` and by ``tools/independent_decoder.py`` (written from FORMAT.md alone), and
what FORMAT.md makes normative must agree (§11, §12): whether decoding fails and the kind of
error, rate and channels, the number of samples, and every sample outside the ranges that depend
on concealment.  A divergence is a finding (``diverge:<what>``), written like a bug.

Cases run in worker subprocesses; the parent is a watchdog that restarts a worker after a crash or
hang and records the case.  Every bug's input is written to ``--out`` (default
``fuzz-findings/``) as ``<outcome>-<seed>-<index>.json`` (target, hex input, traceback), ready to
become a regression test.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
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

from pacodec import container as ct  # noqa: E402
from pacodec import packet as pkt  # noqa: E402
from pacodec._fuzz import (MAX_OUT_PER_BYTE, MAX_PEAK, OK_OUTCOMES, TARGETS,  # noqa: E402
                           TIME_FIXED, TIME_PER_BYTE, TIME_PER_OUT_BYTE, WHOLE_RESULT_TARGETS,
                           case_from_json, case_size, case_to_json, frame_parts, input_bytes,
                           make_seeds, run_case, run_counted, run_measured, split_frames)
from pacodec.errors import FormatError  # noqa: E402

TARGET_WEIGHTS = np.array([30, 6, 14, 16, 4, 12, 18], dtype=float)

# The seeds, the targets, the contract and the bounds: pacodec._fuzz.

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
        ins = ct.SYNC_BYTES + _rand_bytes(rng, int(rng.integers(0, 6)))
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
    return bytes(p[:ct.MAX_PAYLOAD])


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
            ftype = int(rng.integers(0, 4))        # 3: a group (version 8) or damaged
        else:
            seq = int(rng.integers(0, 256))
        frames[i] = ct.pack_frame(ftype, seq, payload)
    return head + b"".join(frames)


def _fix_header_crc(h: bytearray):
    body = bytes(h[:ct.HEADER_SIZE - 2])
    h[ct.HEADER_SIZE - 2:ct.HEADER_SIZE] = ct.crc16(body).to_bytes(2, "big")


def _byte_change(rng, b):
    return int(rng.integers(0, 256)) if rng.random() < 0.5 else b ^ (1 << int(rng.integers(0, 8)))


def mut_config_crc(rng, data, ctx):
    """Change the header's or a config frame's config/length fields and fix the CRC."""
    if data[:4] == ct.MAGIC and len(data) >= ct.HEADER_SIZE and rng.random() < 0.5:
        h = bytearray(data[:ct.HEADER_SIZE])
        for _ in range(int(rng.integers(1, 3))):
            i = int(rng.integers(4, ct.HEADER_SIZE - 2))
            h[i] = _byte_change(rng, h[i])
        _fix_header_crc(h)
        return bytes(h) + data[ct.HEADER_SIZE:]
    try:
        head, frames = split_frames(data)
    except Exception:
        return mut_bytes(rng, data, ctx)
    idx = [i for i, f in enumerate(frames) if frame_parts(f)[0] in (ct.FRAME_CONFIG, ct.FRAME_EOS)]
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
    frames[i] = ct.pack_frame(ftype, seq, bytes(p))
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
        return ct.pack_metadata(ct.Metadata(tags, loud))
    if r < 0.7:
        # a sync word and a CRC-valid frame inside the block (invalid UTF-8: a damaged block)
        seeds = ctx["seeds"]
        try:
            _, frames = split_frames(seeds[int(rng.integers(0, len(seeds)))])
            inner = frames[int(rng.integers(0, len(frames)))]
        except Exception:
            inner = ct.pack_frame(0, 0, b"")
        body = bytes(3) + b"T=" + inner + b"\0"
    else:
        body = _rand_bytes(rng, int(rng.integers(0, 300)))
    body = body[:ct.META_MAX_BODY]
    blk = ct.META_MAGIC + ct._u7(len(body), 2) + body
    return blk + ct._u7(ct.crc16(blk), 3)


def mut_metadata(rng, data, ctx):
    """The metadata block: edited with its CRC fixed, its length or CRC damaged, removed,
    duplicated, or a new (possibly hostile) one inserted after the header."""
    if data[:4] != ct.MAGIC or len(data) < ct.HEADER_SIZE:
        return mut_bytes(rng, data, ctx)
    try:
        start = ct.frames_start(data)
    except Exception:
        start = ct.HEADER_SIZE
    head, block, rest = data[:ct.HEADER_SIZE], data[ct.HEADER_SIZE:start], data[start:]
    r = rng.random()
    if r < 0.3 or not block:
        return head + _fake_block(rng, ctx) + rest
    b = bytearray(block)
    if r < 0.55:                       # content edited, CRC fixed: the parser is reached
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(6, max(7, len(b) - 3)))
            if i < len(b) - 3:
                b[i] = _byte_change(rng, b[i])
        b[-3:] = ct._u7(ct.crc16(bytes(b[:-3])), 3)
    elif r < 0.7:                      # length field: any value, top bits included
        b[4:6] = _rand_bytes(rng, 2)
    elif r < 0.8:
        b[-1] ^= 1 << int(rng.integers(0, 8))
    elif r < 0.9:
        return head + block + block + rest
    else:
        return head + rest
    return head + bytes(b) + rest


def mut_groups(rng, data, ctx):
    """Frame groups (FORMAT.md §4, version 8), CRCs fixed: merge consecutive audio frames into a
    group (also in streams of earlier versions, where it is damaged), split a group into its
    members, or break a group's count, lacing or member lengths."""
    try:
        head, frames = split_frames(data)
    except Exception:
        return mut_payload_crc(rng, data, ctx)
    if not frames:
        return data
    groups = [i for i, f in enumerate(frames) if frame_parts(f)[0] == ct.FRAME_GROUP]
    r = rng.random()
    if r < 0.35 or not groups:
        # merge a run of 2..16 audio frames (type 0) into one group with the first's seq
        i = int(rng.integers(0, len(frames)))
        run = []
        while i + len(run) < len(frames) and len(run) < int(rng.integers(2, 17)):
            t, _, p = frame_parts(frames[i + len(run)])
            if t != ct.FRAME_AUDIO:
                break
            run.append(p)
        if len(run) >= 2 and 1 + sum(ct.lacing_size(len(p)) for p in run) \
                + sum(map(len, run)) <= ct.MAX_PAYLOAD:
            frames[i:i + len(run)] = [ct.pack_group_frame(frame_parts(frames[i])[1], run)]
        return head + b"".join(frames)
    i = groups[int(rng.integers(0, len(groups)))]
    _, seq, payload = frame_parts(frames[i])
    if r < 0.55:
        try:
            members = ct.group_members(payload)
        except FormatError:
            return data
        frames[i:i + 1] = [ct.pack_audio_frame(seq + k, p) for k, p in enumerate(members)]
        return head + b"".join(frames)
    p = bytearray(payload)
    if not p:
        return data
    if r < 0.7:
        p[0] = int(rng.choice([0, 1, 2, 3, 15, 16, 17, 255, int(rng.integers(0, 256))]))
    elif r < 0.85:                       # the lacing bytes after the count
        for _ in range(int(rng.integers(1, 3))):
            j = int(rng.integers(1, min(len(p), 1 + 2 * max(p[0], 1))))  if len(p) > 1 else 0
            p[j] = int(rng.choice([0, 254, 255, int(rng.integers(0, 256))]))
    else:                                # drop or add bytes at the end: the last member changes
        p = p[:int(rng.integers(1, len(p) + 1))] if rng.random() < 0.5 else \
            p + _rand_bytes(rng, int(rng.integers(1, 32)))
    frames[i] = ct.pack_frame(ct.FRAME_GROUP, seq, bytes(p[:ct.MAX_PAYLOAD]))
    return head + b"".join(frames)


MUTATORS = [(mut_bitflip, 14), (mut_bytes, 10), (mut_insert, 10), (mut_delete, 10),
            (mut_truncate, 10), (mut_splice, 6), (mut_frames, 8), (mut_payload_crc, 24),
            (mut_config_crc, 8), (mut_metadata, 6), (mut_groups, 10)]
_MUT_W = np.array([w for _, w in MUTATORS], dtype=float)


def random_stream(rng, ctx) -> bytes:
    """A stream from nothing: random bytes, or a real header/config followed by random frames with
    valid CRCs (random types, sequence numbers and payloads)."""
    r = rng.random()
    if r < 0.25:
        n = int(rng.integers(0, 3000))
        return _rand_bytes(rng, n)
    if r < 0.35:
        return ct.MAGIC + _rand_bytes(rng, int(rng.integers(0, 200)))
    base = ctx["seeds"][int(rng.integers(0, len(ctx["seeds"])))]
    head = base[:ct.HEADER_SIZE] if base[:4] == ct.MAGIC else b""
    cfg_block = None
    try:
        _, frames = split_frames(base)
        cfg_block = frame_parts(frames[0])[2][:ct.CONFIG_SIZE]
    except Exception:
        pass
    out = [head if rng.random() < 0.8 else b""]
    seq = int(rng.integers(0, 256))
    for _ in range(int(rng.integers(0, 30))):
        t = int(rng.choice([0, 0, 0, 1, 1, 2, 3]))
        if t == 1 and cfg_block is not None:
            index = int(rng.integers(0, 2 ** 32)) if rng.random() < 0.2 else seq
            payload = cfg_block + index.to_bytes(4, "big")
        elif t == 2:
            payload = int(rng.integers(0, 2 ** 40)).to_bytes(6, "big") if rng.random() < 0.8 \
                else _rand_bytes(rng, int(rng.integers(0, 10)))
            out.append(ct.pack_frame(2, seq, payload))
            seq = (seq + 1) & 0xFF
            continue
        elif t == 3:                   # a group's count (FORMAT.md §4), random lengths after it
            payload = bytes([int(rng.integers(0, 18))])
        else:
            payload = b""
        n = int(rng.integers(0, 600))
        body = _rand_bytes(rng, n)
        if rng.random() < 0.5:         # sparse payloads look like real ones (small max_band)
            body = bytes(b & int(rng.integers(0, 256)) for b in body)
        out.append(ct.pack_frame(t, seq, payload + body))
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
        pk = [pkt.pack_packet(int(rng.integers(1, 2 ** 32)), int(rng.integers(0, 2 ** 32)),
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


# ---------------------------------------------------------------------------------- differential
# --differential: every mutated byte stream is decoded by the reference (pacodec.decode) and by
# tools/independent_decoder.py (written from bitstreams/FORMAT.md alone); what FORMAT.md makes
# normative must agree (§11, §12): whether decoding fails (and the kind of error), the sample
# rate, the channels, the number of output samples, and every sample outside the ranges that
# depend on concealment (which the independent decoder reports as `non_normative`).
DIFF_TARGET = "differential"
DIFF_OK = ("same", "same_concealed", "same_error")
_IDEC = []


def independent_decoder():
    """tools/independent_decoder.py, loaded by path (it is not a package module)."""
    if not _IDEC:
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "independent_decoder", Path(__file__).resolve().parent / "independent_decoder.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _IDEC.append(mod)
    return _IDEC[0]


def error_kind(msg: str) -> str:
    """The kind of a decoding error, from its message (worded after FORMAT.md §3.2, §4.3)."""
    m = msg.lower()
    if "unsupported" in m:
        v = re.search(r"version (\d+)", m)
        return f"unsupported_version:{v.group(1) if v else '?'}"
    for key, kind in (("header is truncated", "header_truncated"),
                      ("no pacodec stream found", "no_stream"),
                      ("not a pacodec stream", "not_a_stream")):
        if key in m:
            return kind
    return "other:" + msg


def make_diff_case(seed: int, index: int, ctx) -> dict:
    """Case ``index`` of a ``--differential`` run: a mutated (or random) byte stream."""
    rng = np.random.default_rng([seed, index])
    return {"target": DIFF_TARGET, "data": mutate_stream(rng, ctx), "ops": []}


def run_differential(case) -> tuple:
    """Decode ``case["data"]`` with both decoders -> (outcome, detail, counts).

    Outcomes: ``same`` (equal audio, nothing concealed), ``same_concealed`` (equal outside the
    concealed ranges), ``same_error`` (both refuse, same kind of error), or a divergence
    ``diverge:<what>`` (``error``, ``error_kind``, ``format``, ``length``, ``samples``), or
    ``crash:<side>:<Exception>`` for an exception that is not a decoding error."""
    import pacodec
    idec = independent_decoder()
    data = bytes(case["data"])
    counts = {"ns": 0, "nn": 0}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, rfs = pacodec.decode(data)
        rerr = None
    except FormatError as e:
        rerr = error_kind(str(e))
    except Exception as e:                                  # noqa: BLE001 - a finding
        return f"crash:reference:{type(e).__name__}", traceback.format_exc(), counts
    try:
        got, gfs, dec = idec.decode_bytes(data)
        gerr = None
    except idec.DecodeError as e:
        gerr = error_kind(str(e))
    except Exception as e:                                  # noqa: BLE001 - a finding
        return f"crash:independent:{type(e).__name__}", traceback.format_exc(), counts
    if rerr is not None or gerr is not None:
        if rerr is None or gerr is None:
            what = (f"reference: {rerr or f'{len(ref)} samples'}; "
                    f"independent: {gerr or f'{len(got)} samples'}")
            return "diverge:error", what, counts
        if rerr != gerr:
            return "diverge:error_kind", f"reference: {rerr}; independent: {gerr}", counts
        return "same_error", rerr, counts
    if (rfs, ref.shape[1]) != (gfs, got.shape[1]):
        return "diverge:format", (f"reference {rfs} Hz x {ref.shape[1]}; independent {gfs} Hz "
                                  f"x {got.shape[1]}"), counts
    if len(ref) != len(got):
        return "diverge:length", (f"reference {len(ref)} samples, independent {len(got)} "
                                  f"(concealed ranges {dec.non_normative})"), counts
    normative = np.ones(len(ref), dtype=bool)
    for a, b in dec.non_normative:
        normative[a:b] = False
    counts["ns"] = int(normative.sum()) * ref.shape[1]
    counts["nn"] = (len(ref) - int(normative.sum())) * ref.shape[1]
    bad = np.argwhere((ref != got) & normative[:, None])     # +0 == -0 (§11)
    if len(bad):
        i, c = (int(v) for v in bad[0])
        return "diverge:samples", (f"{len(bad)} normative samples differ, first at sample {i} "
                                   f"channel {c}: reference {ref[i, c]!r}, independent "
                                   f"{got[i, c]!r} (concealed ranges {dec.non_normative})"), counts
    if dec.non_normative:
        return "same_concealed", f"concealed ranges {dec.non_normative}", counts
    return "same", "", counts


def run_any(case):
    """(outcome, detail) of a case of either kind (``--replay``, ``--minimize``)."""
    if case["target"] == DIFF_TARGET:
        return run_differential(case)[:2]
    return run_case(case)


# --------------------------------------------------------------------------------------- minimize
def _valid_frame_spans(data: bytes):
    """[(start, end)] of the CRC-valid frames of ``data`` plus the bytes between, in order."""
    spans, pos, last = [], 0, 0
    if data[:4] == ct.MAGIC:
        spans.append((0, min(len(data), ct.HEADER_SIZE)))
        pos = last = spans[-1][1]
    while True:
        p = ct.find_sync(data, pos)
        if p < 0:
            break
        try:
            fr = ct.parse_frame_at(data, p)
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
        if frame[:2] != ct.SYNC_BYTES:
            continue
        ftype, seq, payload = frame_parts(frame)
        keep_n = 12 if ftype == ct.FRAME_CONFIG else 0
        n = len(payload)
        while n > keep_n:
            m = keep_n + (n - keep_n) // 2
            cand_frame = ct.pack_frame(ftype, seq, payload[:m])
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
        return run_any(c)[0] == outcome
    return keep


# --------------------------------------------------------------------------------------- worker
def worker(args):
    if args.memory_mb:
        lim = args.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    seeds = make_seeds(args.seed_dir, root=ROOT)
    ctx = {"seeds": list(seeds.values()), "names": list(seeds)}
    # warm up (kernels, lazy imports, layouts) so start-up is not counted as decode time; the
    # code tables of every version a decoder reads are built once per process (lru_cache: 40-65
    # ms for versions 6 and 7), not charged to the first case of an older version that needs them
    from pacodec.container import SUPPORTED_VERSIONS
    from pacodec.tables import load_codebooks
    for v in SUPPORTED_VERSIONS:
        load_codebooks(version=v)
    if args.differential:
        for i in range(10):
            run_differential(make_diff_case(args.seed ^ 0x5A5A, i, ctx))
        for index in range(args.start, args.stop):
            case = make_diff_case(args.seed, index, ctx)
            sys.stdout.write(f"S {index}\n")
            sys.stdout.flush()
            t0 = time.perf_counter()
            outcome, detail, counts = run_differential(case)
            sys.stdout.write(json.dumps({"i": index, "o": outcome, "n": case_size(case),
                                         "g": DIFF_TARGET, "d": detail[-2000:], "m": None,
                                         "t": time.perf_counter() - t0, **counts}) + "\n")
            sys.stdout.flush()
        return
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
            outcome, detail, m = run_counted(case)
        else:
            outcome, detail, m = run_measured(case)
        out.write(json.dumps({"i": index, "o": outcome, "n": case_size(case), "ni":
                              input_bytes(case), "g": case["target"], "d": detail[-2000:],
                              **m}) + "\n")
        out.flush()


# --------------------------------------------------------------------------------------- parent
class Stats:
    def __init__(self, ok=OK_OUTCOMES):
        self.ok = ok                        # the outcomes that are not findings
        self.normative = self.non_normative = 0     # samples compared (--differential)
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
            self.by_target[(rec["g"], rec["o"] if rec["o"] in self.ok else "BUG")] += 1
            self.bytes += rec["n"]
            self.normative += rec.get("ns", 0)
            self.non_normative += rec.get("nn", 0)
            if rec["o"] not in self.ok:      # hangs and crashes are findings, not timings
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
           "--inject-hang", str(args.inject_hang)] + (["--no-bounds"] if args.no_bounds else []) \
        + (["--differential"] if args.differential else [])
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
            if rec["o"] in stats.ok:
                stats.add(rec)
            else:
                _record_finding(args, rec, stats, ctx)
            nxt = rec["i"] + 1
        proc.stdout.close()
        proc.stderr.close()


def _record_finding(args, rec, stats, ctx):
    case = (make_diff_case if args.differential else make_case)(args.seed, rec["i"], ctx)
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
    ap.add_argument("--differential", action="store_true",
                    help="decode every mutated byte stream with pacodec and with "
                    "tools/independent_decoder.py and compare what FORMAT.md makes normative "
                    "(errors, length, samples outside concealment); a divergence is a finding")
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
                                   "detail": run_any(small)[1]}, indent=1))
        print(f"{case_size(case)} -> {case_size(small)} bytes: {out}")
        return 0
    if args.replay:
        case = case_from_json(json.loads(Path(args.replay).read_text()))
        if case["target"] == DIFF_TARGET:
            print(run_differential(case))
        elif args.no_bounds:
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
    seeds = make_seeds(args.seed_dir, root=ROOT)
    ctx = {"seeds": list(seeds.values()), "names": list(seeds)}
    print(f"{len(seeds)} seed streams ({sum(map(len, seeds.values()))} bytes) in {args.seed_dir}",
          file=sys.stderr)
    deadline = t0 + args.time_limit if args.time_limit else float("inf")
    stats = Stats(DIFF_OK if args.differential else OK_OUTCOMES)
    batches = queue.Queue()
    for s in range(args.first, args.first + args.cases, args.batch):
        batches.put((s, min(s + args.batch, args.first + args.cases)))

    failed = []            # an error of the harness itself: no report of a clean run after it

    def job():
        while time.time() < deadline:
            try:
                a, b = batches.get_nowait()
            except queue.Empty:
                return
            try:
                run_batch(args, a, b, stats, ctx, deadline)
            except Exception as e:                 # noqa: BLE001 - reported below, then exit 2
                failed.append(f"{type(e).__name__}: {e}")
                return
            print(f"  [{time.time() - t0:7.1f} s] {stats.cases} cases, "
                  f"{sum(v for k, v in stats.outcomes.items() if k not in stats.ok)} "
                  f"{'divergences' if args.differential else 'bugs'}",
                  file=sys.stderr, flush=True)

    threads = [threading.Thread(target=job) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    if failed:
        print(f"fuzz: the harness failed, results incomplete: {failed[0]}", file=sys.stderr)
        return 2
    report(args, stats, elapsed)
    if args.selftest:
        got = sorted((o.split(":")[0], i) for o, i, *_ in stats.findings)
        want = [("crash", args.first + 3), ("hang", args.first + 7)]
        print(f"selftest: {'passed' if got == want and stats.cases == args.cases else 'FAILED'} "
              f"(recorded {got}, {stats.cases} of {args.cases} cases)")
        return 0 if got == want and stats.cases == args.cases else 1
    return 1 if stats.findings else 0


def report(args, stats, elapsed):
    if args.differential:
        return report_differential(args, stats, elapsed)
    print(f"pacodec fuzz: seed {args.seed}, {stats.cases} cases in {elapsed:.0f} s "
          f"({stats.cases / max(elapsed, 1e-9):.0f}/s, {args.jobs} jobs), "
          f"{stats.bytes / 1e6:.1f} MB of input")
    _print_outcomes(stats)
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
    _print_findings(args, stats, "finding(s)", "no crash, hang, unexpected exception or bad output")


def report_differential(args, stats, elapsed):
    print(f"pacodec differential fuzz (reference vs tools/independent_decoder.py): seed "
          f"{args.seed}, {stats.cases} cases in {elapsed:.0f} s, {stats.bytes / 1e6:.1f} MB of "
          f"input")
    _print_outcomes(stats)
    print(f"samples compared bit-exactly: {stats.normative} (plus {stats.non_normative} "
          f"concealed, not compared)")
    _print_findings(args, stats, "divergence(s)", "no divergence")


def _print_outcomes(stats):
    print("outcomes:")
    for k, v in sorted(stats.outcomes.items(), key=lambda kv: -kv[1]):
        print(f"  {k:<24} {v:>8}  ({100 * v / max(stats.cases, 1):.1f} %)")


def _print_findings(args, stats, what, none):
    if stats.findings:
        print(f"{len(stats.findings)} {what} written to {args.out}/:")
        for o, i, t, n, p in sorted(stats.findings, key=lambda f: f[1]):
            print(f"  {o:<24} case {i:<8} {t:<8} {n:>7} bytes  {p}")
    else:
        print(none)


if __name__ == "__main__":
    sys.exit(main())
