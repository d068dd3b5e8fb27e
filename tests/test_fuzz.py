"""Property-based fuzzing of everything that reads untrusted bytes.

Streams are real ``.pac`` files (the fuzzer's seeds, pacodec._fuzz: many rates, channel counts, quantizers,
low delay, short blocks, no header...) damaged by bit flips, byte changes, insertions, deletions,
truncation, splicing, and payload/config changes with the CRC fixed up (so the payload parser and
its numba kernels see hostile input, not just CRC failures), plus purely random input.  The
contract (``pacodec._fuzz.run_case``): audio (float32, ``(n, channels)``, finite) or an ``Info``
comes back, or :class:`pacodec.FormatError` is raised, a truncated stream warns at most once, and
chunked decoding equals one-shot decoding.  ``python tools/fuzz.py`` runs the same oracle for
100 000s of cases with crash and hang detection.
"""
import functools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pacodec import _fuzz as FUZZ
from pacodec import container as ct
from pacodec import packet as pkt
from pacodec.errors import FormatError

FUZZ_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@functools.lru_cache(maxsize=None)
def _seeds():
    return tuple(FUZZ.make_seeds(root=Path(__file__).resolve().parents[1]).values())


@pytest.fixture(scope="module")
def seeds():
    return _SeedList(_seeds())


class _SeedList(tuple):
    """The seed streams, shown by name only when hypothesis reports a failing example."""

    def __repr__(self):
        return f"<{len(self)} seed streams from pacodec._fuzz>"


def check(case):
    outcome, detail = FUZZ.run_case(case)
    assert outcome in FUZZ.OK_OUTCOMES, f"{outcome}\n{detail}\ncase: {FUZZ.case_to_json(case)}"
    return outcome


# ----------------------------------------------------------------------------- strategies
idx = st.integers(min_value=0, max_value=10 ** 6)
edit = st.one_of(
    st.tuples(st.just("flip"), idx, st.integers(0, 7)),
    st.tuples(st.just("set"), idx, st.integers(0, 255)),
    st.tuples(st.just("insert"), idx, st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("sync"), idx, st.integers(0, 0xFFFF)),          # sync word + type/length
    st.tuples(st.just("delete"), idx, st.integers(1, 300)),
    st.tuples(st.just("truncate"), idx, st.booleans()),
    st.tuples(st.just("splice"), idx, idx),
    st.tuples(st.just("payload"), idx, st.lists(st.tuples(idx, st.integers(0, 7)), max_size=4)),
    st.tuples(st.just("resize"), idx, st.integers(0, 600)),
    st.tuples(st.just("config"), idx, st.integers(0, 255)),
)


def apply(data: bytes, seeds, ops) -> bytes:
    for op, a, b in ops:
        n = max(len(data), 1)
        if op == "flip" and data:
            i = a % len(data)
            data = data[:i] + bytes([data[i] ^ (1 << b)]) + data[i + 1:]
        elif op == "set" and data:
            i = a % len(data)
            data = data[:i] + bytes([b]) + data[i + 1:]
        elif op == "insert":
            i = a % (len(data) + 1)
            data = data[:i] + b + data[i:]
        elif op == "sync":
            i = a % (len(data) + 1)
            data = data[:i] + ct.SYNC_BYTES + b.to_bytes(2, "big") + data[i:]
        elif op == "delete":
            i = a % n
            data = data[:i] + data[i + b:]
        elif op == "truncate":
            i = a % (len(data) + 1)
            data = data[:i] if b else data[i:]
        elif op == "splice":
            other = seeds[a % len(seeds)]
            data = data[:a % (len(data) + 1)] + other[b % (len(other) + 1):]
        elif op in ("payload", "resize", "config"):
            try:
                head, frames = FUZZ.split_frames(data)
            except Exception:
                continue
            if not frames:
                continue
            k = a % len(frames)
            ftype, seq, payload = FUZZ.frame_parts(frames[k])
            p = bytearray(payload)
            if op == "payload":
                for j, bit in b:
                    if p:
                        p[j % len(p)] ^= 1 << bit
            elif op == "resize":
                p = (p + bytes(b))[:b] if b > len(p) else p[:b]
            elif p:
                p[a % min(len(p), 12)] = b
            frames[k] = ct.pack_frame(ftype, seq, bytes(p))
            data = head + b"".join(frames)
    return data


streams = st.tuples(st.integers(0, 10 ** 6), st.lists(edit, min_size=1, max_size=5))
targets = st.sampled_from(["decode", "decode", "feed", "strict", "info", "pacfile"])
pacfile_ops = st.lists(st.one_of(st.tuples(st.just("seek"), st.integers(0, 150000)),
                                 st.tuples(st.just("read"), st.integers(-1, 20000)),
                                 st.tuples(st.just("blocks"), st.integers(1, 5000))),
                       min_size=1, max_size=4)


# ----------------------------------------------------------------------------- properties
@settings(max_examples=1200, **FUZZ_SETTINGS)
@given(stream=streams, target=targets, ops=pacfile_ops,
       chunks=st.lists(st.integers(1, 3000), min_size=1, max_size=6))
def test_damaged_streams_decode_or_raise_format_error(seeds, stream, target, ops, chunks):
    which, edits = stream
    data = apply(seeds[which % len(seeds)], seeds, edits)
    extra = {"feed": chunks, "pacfile": [list(o) for o in ops]}.get(target, [])
    check({"target": target, "data": data, "ops": extra})


@settings(max_examples=400, **FUZZ_SETTINGS)
@given(data=st.binary(max_size=3000), header=st.sampled_from([b"", b"PACD", "seed"]),
       target=targets, which=st.integers(0, 10 ** 6))
def test_random_bytes_decode_or_raise_format_error(seeds, data, header, target, which):
    if header == "seed":
        header = seeds[which % len(seeds)][:ct.HEADER_SIZE]
    ops = {"feed": [97], "pacfile": [["seek", 5000], ["read", -1]]}.get(target, [])
    check({"target": target, "data": header + data, "ops": ops})


@settings(max_examples=500, **FUZZ_SETTINGS)
@given(which=st.integers(0, 10 ** 6), frames=st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 255), st.binary(max_size=400)), max_size=25))
def test_random_frames_with_valid_crcs_after_a_real_config(seeds, which, frames):
    """Random payloads that pass the CRC: the payload parser must validate every field."""
    base = seeds[which % len(seeds)]
    head, real = FUZZ.split_frames(base)
    cfg_payload = FUZZ.frame_parts(real[0])[2][:ct.CONFIG_SIZE + 4]
    out = [head]
    for ftype, seq, payload in frames:
        if ftype == 3:                                    # a config frame, random audio after it
            out.append(ct.pack_frame(1, cfg_payload[-1], cfg_payload + payload))
        else:
            out.append(ct.pack_frame(ftype, seq, payload))
    data = b"".join(out)
    for target in ("decode", "info"):
        check({"target": target, "data": data, "ops": []})
    check({"target": "packet", "data": [f for f in out[1:]], "ops": []})


@settings(max_examples=500, **FUZZ_SETTINGS)
@given(which=st.integers(0, 10 ** 6), plan=st.lists(
    st.tuples(st.sampled_from(["keep", "lose", "dup", "edit", "junk", "cut"]), idx, idx),
    min_size=1, max_size=30))
def test_packet_mode_survives_lost_duplicated_and_damaged_packets(seeds, which, plan):
    _, frames = FUZZ.split_frames(seeds[which % len(seeds)])
    packets = []
    for i, (what, a, b) in enumerate(plan):
        f = frames[i % len(frames)]
        if what == "lose":
            f = b""
        elif what == "dup":
            f = frames[a % len(frames)]
        elif what == "edit":
            f = apply(f, seeds, [("payload", 0, [(a, b % 8)])] if b % 2 else [("flip", a, b % 8)])
        elif what == "junk":
            f = bytes([a % 256, b % 256]) * (a % 30)
        elif what == "cut":
            f = f[:a % (len(f) + 1)]
        packets.append(f)
    check({"target": "packet", "data": packets, "ops": []})
    wrapped = [pkt.pack_packet(1 + a % 1000, a, b, f) for f, (_, a, b) in zip(packets, plan)]
    check({"target": "unpack", "data": wrapped, "ops": []})


@settings(max_examples=300, **FUZZ_SETTINGS)
@given(data=st.binary(max_size=64))
def test_unpack_packet_returns_fields_or_raises_format_error(data):
    try:
        p = pkt.unpack_packet(data)
    except FormatError:
        return
    assert 0 < p.session < 2 ** 32 and 0 <= p.seq < 2 ** 32 and 0 <= p.timestamp < 2 ** 32
    assert p.frame == data[14:] and not p.authenticated


# ----------------------------------------------------------------------------- resource bounds
@settings(max_examples=150, **FUZZ_SETTINGS)
@given(stream=streams, target=st.sampled_from(["decode", "feed", "info", "pacfile", "packet"]),
       ops=pacfile_ops, chunks=st.lists(st.integers(1, 3000), min_size=1, max_size=6))
def test_damaged_streams_stay_within_the_resource_bounds(seeds, stream, target, ops, chunks):
    """The fuzzer's bounds, checked by rate (no wall time): output bytes per input byte within
    the format's worst case (pacodec._fuzz.MAX_OUT_PER_BYTE), and a tracemalloc peak that for
    inputs this small (< 100 KB) stays under 64 MB -- plus 4 bytes per output byte for the
    targets that return the whole result."""
    which, edits = stream
    data = apply(seeds[which % len(seeds)], seeds, edits)
    if target == "packet":
        try:
            case = {"target": "packet", "data": FUZZ.split_frames(data)[1], "ops": []}
        except Exception:
            case = {"target": "decode", "data": data, "ops": []}
    else:
        extra = {"feed": chunks, "pacfile": [list(o) for o in ops]}.get(target, [])
        case = {"target": target, "data": data, "ops": extra}
    FUZZ.run_case(case)                      # first use (tables, caches) is not the case's cost
    outcome, detail, m = FUZZ.run_measured(case, time_bound=False)
    assert outcome in FUZZ.OK_OUTCOMES, f"{outcome}\n{detail}"
    n = max(FUZZ.input_bytes(case), 1)
    assert m["ob"] <= FUZZ.MAX_OUT_PER_BYTE * n
    whole = case["target"] in FUZZ.WHOLE_RESULT_TARGETS
    assert m["m"] <= 64 * 2 ** 20 + (4 * m["ob"] if whole else 0), m
