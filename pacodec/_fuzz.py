"""The decoder fuzzing oracle: seed streams, the targets a case runs, the contract they must keep
and the resource bounds -- what ``tools/fuzz.py`` (mutators, worker processes, watchdog, the
command line) and the tests (``tests/test_fuzz.py``, ``tests/test_regressions.py``) share.

A *case* is ``{"target", "data", "ops"}``: ``target`` one of :data:`TARGETS`; ``data`` the
input bytes (a list of frames or packets for ``packet``/``unpack``); ``ops`` the chunk sizes of
``feed`` or the seeks and reads of ``pacfile``.  :func:`run_case` runs one and names its outcome:
float32 audio shaped ``(n, channels)`` with finite values (or an ``Info``), or a
:class:`~pacodec.errors.FormatError`, and a truncated stream warns at most once
(:data:`OK_OUTCOMES`); anything else is a bug.  :func:`run_measured` also measures and bounds
its output, memory and time.  The seed streams (:func:`make_seeds`) are encoded from the CC0
clips of a source checkout (``pacodec/data``, ``tests/data``) plus its conformance vectors
(``bitstreams/vectors``).
"""
from __future__ import annotations

import io
import json
import os
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

import pacodec
from pacodec import container as ct
from pacodec import packet as pkt
from pacodec.decoder import CONCEAL_FREE, CONCEAL_FREE_V8, MIN_FRAME_BYTES
from pacodec.errors import FormatError

__all__ = ["TARGETS", "OK_OUTCOMES", "SEED_SPECS", "make_seed", "make_seeds", "split_frames",
           "frame_parts", "BadOutput", "MAX_OUT_PER_BYTE", "MAX_PEAK", "WHOLE_RESULT_TARGETS",
           "input_bytes", "check_bounds", "run_case", "run_measured", "run_counted",
           "case_size", "case_to_json", "case_from_json"]

#: the default source checkout (its clips and conformance vectors make the seeds): the one this
#: module sits in when pacodec runs from a checkout; an installed pacodec is given ``root``
ROOT = Path(__file__).resolve().parents[1]

TARGETS = ("decode", "strict", "feed", "packet", "unpack", "info", "pacfile")
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


def clip_path(name, root=None) -> Path:
    """A CC0 clip of the package (``pacodec/data``) or of the checkout's tests (``tests/data``)."""
    p = Path(__file__).resolve().parent / "data" / name
    return p if p.exists() else Path(root or ROOT) / "tests" / "data" / name


def _clip(name, nsamples, channels, root=None):
    import soundfile as sf
    x, fs = sf.read(clip_path(name, root), always_2d=True)
    x = x[int(0.1 * fs):int(0.1 * fs) + nsamples]
    cols = [x[:, 0], x[:, -1], 0.5 * (x[:, 0] - x[:, -1])]
    out = np.stack([cols[c % 3] * (1.0 - 0.1 * (c // 3)) for c in range(channels)], axis=1)
    return out


def make_seed(spec, root=None) -> bytes:
    name, clip, seconds, rate, ch, kwargs = spec
    kwargs = dict(kwargs)
    unknown = kwargs.pop("_unknown", False)
    headerless = kwargs.pop("_headerless", False)
    # the clip is only relabelled with another rate: content does not matter, the layout does
    x = _clip(clip, int(seconds * rate), ch, root)
    enc = pacodec.Encoder(rate, ch, total_frames=None if unknown else len(x), **kwargs)
    parts = enc.encode(x)
    parts += enc.flush()
    # the header last: after flush its metadata block holds the loudness (same size)
    return (b"" if headerless else enc.header()) + b"".join(parts)


def make_seeds(cache_dir: str | os.PathLike | None = None, vectors: bool = True,
               root: str | os.PathLike | None = None) -> dict:
    """All seed streams by name (cached as ``NAME.pac`` in ``cache_dir`` when given), from the
    source checkout ``root`` (default :data:`ROOT`)."""
    root = Path(root or ROOT)
    seeds = {}
    cache = Path(cache_dir) if cache_dir else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    for spec in SEED_SPECS:
        p = cache / f"{spec[0]}.pac" if cache else None
        if p is not None and p.exists():
            seeds[spec[0]] = p.read_bytes()
            continue
        data = make_seed(spec, root)
        seeds[spec[0]] = data
        if p is not None:
            p.write_bytes(data)
    if vectors:
        for p in sorted((root / "bitstreams" / "vectors").glob("v*/*.pac")):
            data = p.read_bytes()
            try:                   # intact streams only: one vector is damaged on purpose
                split_frames(data)
            except (FormatError, AttributeError):
                continue
            seeds["vector_" + p.stem] = data
    return seeds


def split_frames(data: bytes):
    """(header and metadata bytes or b'', [frame bytes]) of a valid stream."""
    pos = ct.frames_start(data)
    head = data[:pos]
    frames = []
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        frames.append(bytes(data[pos:pos + fr.size]))
        pos += fr.size
    return head, frames


def frame_parts(frame: bytes):
    """(type, seq, payload) of a frame (CRC not checked)."""
    return frame[2] >> 6, frame[4], frame[ct.FRAME_HEADER_SIZE:-ct.CRC_SIZE]



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
        # one hop per frame; a frame group (FORMAT.md §4) is its members' frames, all or none
        group = dec.config is not None and dec.config.version >= ct.GROUP_VERSION and f \
            and len(f) > ct.FRAME_HEADER_SIZE and f[2] >> 6 == ct.FRAME_GROUP
        allowed = (0, dec.frame_size) if not group else \
            (0, dec.frame_size, f[ct.FRAME_HEADER_SIZE] * dec.frame_size)
        if dec.config is not None and len(y) not in allowed:
            raise BadOutput(f"packet output of {len(y)} samples (frame size {dec.frame_size})")


def _run_unpack(packets):
    dec = pacodec.Decoder()
    for p in packets:
        try:
            pk = pkt.unpack_packet(p)
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
#: packet counts as MIN_FRAME_BYTES of input).  Version 8 (frame groups, FORMAT.md §12): up to
#: 1 + CONCEAL_FREE_V8 hops per frame of at least 8 bytes (a group of n members, at least 3n + 7
#: bytes, yields n + 16; bytes in a gap one hop per 2), 139 264 bytes per input byte.  Memory (tracemalloc peak: Python and numpy
#: allocations; numba's and LLVM's own are not traced): 300 MB for the streaming targets
#: (packets, info, PacFile reads, which never hold more than a block), and for the targets that
#: return everything by design (decode, strict, feed) 300 MB plus 4 bytes per output byte (the
#: result and the copies of its concatenation).  Time: 50 ms plus 100 us per input byte plus
#: 0.1 us per output byte of the process's CPU time -- linear in input and output (CPU time, not
#: wall time, so that a loaded machine does not fail cases; hangs are caught by --timeout).
MAX_OUT_PER_BYTE = (1 + max(CONCEAL_FREE, CONCEAL_FREE_V8)) * 2048 * 8 * 4 // MIN_FRAME_BYTES
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



def run_counted(case):
    """``run_case`` timed, its output counted, nothing traced or bounded -> (outcome, detail,
    measures: seconds ``t``, ``m`` None, output bytes ``ob``)."""
    _OUT[0] = 0
    t0 = time.perf_counter()
    outcome, detail = run_case(case)
    return outcome, detail, {"t": time.perf_counter() - t0, "m": None, "ob": _OUT[0]}
