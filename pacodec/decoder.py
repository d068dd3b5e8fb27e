"""The stateful decoder (normative together with FORMAT.md): bytes or packets in, PCM out.

Byte-stream mode (:meth:`Decoder.feed` / :meth:`Decoder.finish`) reads a ``.pac`` file or pipe: the
optional stream header, then frames found by their sync word and checked by their CRC.  Garbage is
skipped (resync on the next sync word whose frame passes its CRC); frames lost to corruption are
counted from the 8-bit sequence numbers and concealed; output is trimmed to the input's exact
length (the leading encoder delay and the padding after the total length are dropped).  A damaged
stream header is skipped (the config is repeated in-band); a CRC-valid frame whose payload is
invalid counts as lost; concealment of a sequence-number gap is bounded by the bytes the lost
frames could have occupied, so output per input byte stays bounded (FORMAT.md §12).

Packet mode (:meth:`Decoder.decode_packet`) decodes one frame per call, or conceals a lost one
(``None``), and returns exactly one hop of samples per frame once a config has been seen.

The jobs are separate pieces: frame scanning is :class:`.container.Scanner`; the normative decode
of one frame is :class:`FrameDecoder`; the time line (encoder delay, end trimming, gaps) is
:class:`Timeline`; concealment is :class:`.conceal.Concealer`.  :class:`Decoder` runs them.

Per frame: payload parse (:func:`.payload.read_payload`) → dequantize and noise substitution
(:func:`reconstruct`) → inverse M/S → IMDCT, window, overlap-add.  In byte-stream mode, runs of
clean audio frames that continue the stream go through all of that in one kernel call
(:func:`decode_run`, offered each position by the scanner); every other frame through
:meth:`Decoder._handle`.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections import namedtuple

import numpy as np

from . import container as ct
from ._jit import njit
from .bitio import reader_state
from .container import (CRC_SIZE, FRAME_AUDIO, FRAME_GROUP, FRAME_HEADER_SIZE, MAX_GROUP,
                        MIN_GROUP, SCAN_FRAME, Metadata, _scan)
from .payload import layout_for, read_payload
from .conceal import CONCEAL_DECAY, Concealer
from .conceal import METHODS as CONCEAL_METHODS
from .config import StreamConfig
from .errors import FormatError, ProblemLog, VersionError
from .mdct import imdct_kernel, plan
from .quantize import dequantize_unit, step_of
from .tables import NOISE_BOOK, load_codebooks
from .window import block_window

__all__ = ["Decoder", "FrameDecoder", "Timeline", "reconstruct", "CONCEAL_DECAY"]

# Byte-stream mode: a gap of lost frames is concealed only as far as the bytes between the two
# accepted frames could have held frames (every frame takes >= MIN_FRAME_BYTES), plus
# CONCEAL_FREE frames for a cut without damaged bytes.  A larger sequence jump is a splice, not
# a loss: the time line jumps instead, so a few bytes can never expand into 255 frames of audio.
CONCEAL_FREE = 8
#: version 8 (frame groups, FORMAT.md §4, §12): a group member takes as little as 2 bytes, and a
#: whole group of 16 frames is concealed without damaged bytes in between
CONCEAL_FREE_V8, MIN_FRAME_BYTES_V8 = 16, 2
# the noise-substitution generator's state is set from the frame index before every frame
# (format 2, FORMAT.md §8.4): see noise_seed
MIN_FRAME_BYTES = 8
# byte-stream mode decodes runs of clean frames in one kernel call (decode_run): at most this
# many frames per call, i.e. per output block
RUN_FRAMES = 32
F32_MAX = float(np.finfo(np.float32).max)


# ----------------------------------------------------------------------------- noise seed §8.4
NOISE_SEED_MUL = 0x9E3779B9     # odd, so consecutive frame indices give distinct seeds
NOISE_SEED_ADD = 0x6A09E667


def noise_seed(frame_index: int) -> int:
    """The noise generator's state at the start of frame ``frame_index`` (FORMAT.md §8.4):
    ``(i * 0x9E3779B9 + 0x6A09E667) mod 2^32`` with ``i = frame_index mod 2^32``, 1 if that is 0.
    Written so that it also runs in int64 arithmetic (the 32-bit product is formed from 16-bit
    halves, so nothing overflows): :data:`noise_seed_kernel` is this function compiled, so the
    per-frame decoder and the kernels' run path cannot disagree on a seed."""
    i = frame_index & 0xFFFFFFFF
    x = ((i & 0xFFFF) * NOISE_SEED_MUL + ((((i >> 16) * NOISE_SEED_MUL) & 0xFFFF) << 16)
         + NOISE_SEED_ADD) & 0xFFFFFFFF
    return x if x != 0 else 1


noise_seed_kernel = njit(inline="always")(noise_seed)


@njit(inline="always")
def _xorshift(state):
    x = state[0]
    x ^= (x << np.uint32(13)) & np.uint32(0xFFFFFFFF)
    x ^= x >> np.uint32(17)
    x ^= (x << np.uint32(5)) & np.uint32(0xFFFFFFFF)
    state[0] = x
    return x


@njit(inline="always")
def reconstruct(q, books, sf, ub, nunits, quantizer, mu, rng, out):
    """Dequantize the units of one channel into ``out`` (coding order); noise units (book 7) get
    uniform noise scaled to the signalled RMS ``step(sf)`` (FORMAT.md §8.4): the generator steps,
    then its new state gives the value; the unit's measured RMS is scaled to ``step(sf)``; before
    inverse M/S.  ``rng`` was seeded from the frame index (:func:`noise_seed`)."""
    for i in range(out.shape[0]):
        out[i] = 0.0
    for u in range(nunits):
        s = ub[u]
        e = ub[u + 1]
        bk = books[u]
        if bk == 0 or e <= s:
            continue
        if bk == NOISE_BOOK:
            acc = 0.0
            for i in range(s, e):
                r = (np.float64(_xorshift(rng)) / 2147483648.0) - 1.0
                out[i] = r
                acc += r * r
            g = step_of(sf[u]) * np.sqrt((e - s) / max(acc, 1e-30))
            for i in range(s, e):
                out[i] *= g
        else:
            dequantize_unit(q, s, e, sf[u], quantizer, mu, out)


@njit(inline="always")
def inverse_ms(a, b, ub, nunits, flags):
    for u in range(nunits):
        if flags[u]:
            for i in range(ub[u], ub[u + 1]):
                m = a[i]
                s = b[i]
                a[i] = (m + s) * 0.7071067811865476
                b[i] = (m - s) * 0.7071067811865476


# Kernel argument bundles: built with these namedtuples, passed as plain tuples (see
# mdct.PlanArrays) and unpacked by name at the top of the kernel.
#: Scratch of :func:`synth`: long (y, u, work) and short (ys, us, works) IMDCT buffers.
SynthScratch = namedtuple("SynthScratch", "y u work ys us works")
#: Per-frame arrays of :func:`decode_payload` (see :func:`~pacodec.payload.read_payload`).
FrameArrays = namedtuple("FrameArrays", "hdr max_band ms_mode ms_flags books sf q cod nat")
#: Band layout of a configuration, as kernel arguments (see :class:`~pacodec.payload.Layout`).
LayoutArrays = namedtuple("LayoutArrays", "nb_long nb_short ub_long ub_short perm_short")
#: Scratch of :func:`decode_run` for a frame group (FORMAT.md §4): the members' payload lengths,
#: window flags (is_short, left_short, right_short) and spectra, all parsed before any is
#: synthesised (a group is decoded whole or not at all).  ``on``: the stream's version has groups.
GroupScratch = namedtuple("GroupScratch", "on lengths flags spectra")
#: Canonical-code decoding tables (see :class:`~pacodec.tables.CodebookSet`).
#: ``ctx``: the version's context parameters (:func:`~pacodec.tables.context_params`).
#: ``lut``: first look-up of every code (:func:`~pacodec.tables.decode_lut`).
DecodeBooks = namedtuple("DecodeBooks", "ctx count first offset symbols lut")


@njit
def synth(coefs, is_short, win, wshort, ola, out, o, s, pl, pls, scr):
    """IMDCT, window and overlap-add one frame of every channel; writes ``n`` samples per channel
    (padded time ``kN + s`` on, FORMAT.md §6.3) into rows ``o:o + n`` of ``out`` (rows, channels)
    and shifts ``ola``.
    ``pl``/``pls``: long/short :class:`~pacodec.mdct.PlanArrays`; ``scr``: :data:`SynthScratch`."""
    pre, post, rev, tw = pl
    pre_s, post_s, rev_s, tw_s = pls
    y, u, work, ys, us, works = scr
    nch = coefs.shape[0]
    n = coefs.shape[1]
    for c in range(nch):
        if is_short:
            ns = n // 8
            off = n // 2 - ns // 2
            for j in range(8):
                imdct_kernel(coefs[c, j * ns:(j + 1) * ns], ys, pre_s, post_s, rev_s, tw_s, us,
                             works)
                base = off + j * ns
                for i in range(2 * ns):
                    ola[c, base + i] += ys[i] * wshort[i]
        else:
            imdct_kernel(coefs[c], y, pre, post, rev, tw, u, work)
            for i in range(2 * n):
                ola[c, i] += y[i] * win[i]
        for i in range(n):
            v = ola[c, s + i]
            # a valid stream can code values beyond float32 (mu-law with a large mu and |q|):
            # saturate instead of returning inf (the float64 path cannot overflow)
            if v > F32_MAX:
                v = F32_MAX
            elif v < -F32_MAX:
                v = -F32_MAX
            out[o + i, c] = v
        for i in range(n):
            ola[c, i] = ola[c, n + i]
            ola[c, n + i] = 0.0


@njit
def decode_payload(buf, st, nch, short_allowed, lay, books, fa, quantizer, mu, rng):
    """Parse, dequantize, noise-fill and undo M/S of one payload (natural order into
    ``fa.nat``).  ``lay``: :data:`LayoutArrays`; ``books``: :data:`DecodeBooks`; ``fa``:
    :data:`FrameArrays`.

    Returns 0, or the error code of :func:`~pacodec.payload.read_payload`, or 3 for an invalid
    window combination.
    """
    hdr, max_band, msm, msf, bk, sf, q, cod, nat = fa
    nb_long, nb_short, ub_long, ub_short, perm_short = lay
    ctx, count, first, offset, symbols, lut = books
    err = read_payload(buf, st, nch, short_allowed, nb_long, nb_short, hdr, max_band, msm, msf,
                       bk, sf, q, ub_long, ub_short, ctx, count, first, offset, symbols, lut)
    if err:
        return err
    is_short = hdr[0]
    if (hdr[1] or hdr[2]) and not short_allowed:
        return 3
    if is_short and not (hdr[1] and hdr[2]):
        return 3
    nunits = hdr[4] * hdr[5]
    ub = ub_short[hdr[3]] if is_short else ub_long
    for c in range(nch):
        reconstruct(q[c], bk[c], sf[c], ub, nunits, quantizer, mu, rng, cod[c])
    for p in range(nch // 2):
        if msm[p]:
            inverse_ms(cod[2 * p], cod[2 * p + 1], ub, nunits, msf[p])
    n = cod.shape[1]
    if is_short:
        perm = perm_short[hdr[3]]
        for c in range(nch):
            for i in range(n):
                nat[c, perm[i]] = cod[c, i]
    else:
        for c in range(nch):
            for i in range(n):
                nat[c, i] = cod[c, i]
    return 0


@njit
def group_lengths(view, p, end, lengths):
    """The member count of the audio group whose payload is ``view[p:end]`` (FORMAT.md §4), its
    members' payload lengths in ``lengths`` and the offset of the first member, or count 0 when
    the group is damaged (count outside 2..16, lengths that overrun the payload).  Every index
    is checked against ``end``."""
    if p >= end:
        return 0, p
    cnt = int(view[p])
    if cnt < MIN_GROUP or cnt > MAX_GROUP:
        return 0, p
    q = p + 1
    total = 0
    for j in range(cnt - 1):
        ln = 0
        while True:
            if q >= end:
                return 0, p
            b = int(view[q])
            q += 1
            ln += b
            if b < 255:
                break
        lengths[j] = ln
        total += ln
    last = end - q - total
    if last < 0:
        return 0, p
    lengths[cnt - 1] = last
    return cnt, q


@njit(inline="always")
def _parse_at(view, a, b, frame_index, st, nch, short_allowed, lay, books, fa, quantizer, mu, rng):
    """:func:`decode_payload` of the audio payload ``view[a:b]`` of the frame with index
    ``frame_index`` (its noise seed, §8.4): a plain frame's or a group member's (§4)."""
    st[0] = a * 8
    st[1] = 0
    st[2] = b * 8
    rng[0] = noise_seed_kernel(frame_index)
    return decode_payload(view, st, nch, short_allowed, lay, books, fa, quantizer, mu, rng)


@njit(inline="always")
def _emit(spec, flags, keep, win, wshort, ola, out, at, s, pl, pls, scr):
    """Synthesise one parsed frame (``spec``; ``flags`` = is_short, left_short, right_short) at
    ``out[at:]``, keeping a long frame's spectrum in ``keep`` (:func:`decode_run`)."""
    if not flags[0]:
        for c in range(spec.shape[0]):
            for i in range(spec.shape[1]):
                keep[c, i] = spec[c, i]
    synth(spec, flags[0], win[2 * flags[1] + flags[2]], wshort, ola, out, at, s, pl, pls, scr)


@njit
def decode_run(view, pos, n, final, P, p0, xpow, res, seq, index, nch, short_allowed, lay, books,
               fa, quantizer, mu, rng, win, wshort, ola, s, pl, pls, scr, st, out, keep, info,
               grp):
    """Decode consecutive clean audio frames of the scanner's buffer ``view[pos:n]`` in one call
    (byte-stream mode, after the first frame): each is found with the scanner's
    :func:`~pacodec.container._scan` (``P``, ``p0``, ``xpow``, ``res`` as there), parsed and
    dequantized (:func:`decode_payload`, the payload read in place: ``st`` bounds the reader to
    it) and synthesized into the next ``hop`` rows of ``out``.

    Stops before the first frame that needs the per-frame path: damaged bytes, no complete frame,
    a config or end-of-stream frame, a sequence number other than the expected one (a gap), an
    invalid payload or group (state is unchanged by it), or when ``out`` is full.  Frame ``k``
    has sequence number ``seq + k`` and frame index ``index + k`` (noise seed, §8.4); a group
    (``grp``: :data:`GroupScratch`, version 8) is its members' frames.  ``keep`` receives the
    spectrum of the last long frame; ``info`` = [frames, short frames, a long frame was decoded,
    right_short of the last].  Returns the buffer position after the last frame."""
    hop = fa[8].shape[1]
    nat = fa[8]
    hdr = fa[0]
    groups, glen, gflags, gspec = grp
    maxk = out.shape[0] // hop
    k = 0
    nshort = 0
    had_long = 0
    last_rs = 0
    while k < maxk and pos < n:
        _scan(view, pos, n, final, P, p0, xpow, res)
        if res[0] != SCAN_FRAME or res[4] >= 0 or res[1] != pos:
            break
        size = res[2]
        b2 = int(view[pos + 2])
        if int(view[pos + 4]) != ((seq + k) & 0xFF):
            break
        if (b2 >> 6) == FRAME_GROUP and groups:
            # every member parsed first (into gspec), then synthesised: all or nothing
            cnt, q = group_lengths(view, pos + FRAME_HEADER_SIZE, pos + size - CRC_SIZE, glen)
            if cnt == 0 or k + cnt > maxk:
                break
            bad = False
            for j in range(cnt):
                if _parse_at(view, q, q + glen[j], index + k + j, st, nch, short_allowed, lay,
                             books, fa, quantizer, mu, rng):
                    bad = True
                    break
                for c in range(nch):
                    for i in range(hop):
                        gspec[j, c, i] = nat[c, i]
                gflags[j, 0] = hdr[0]
                gflags[j, 1] = hdr[1]
                gflags[j, 2] = hdr[2]
                q += glen[j]
            if bad:
                break
            for j in range(cnt):
                _emit(gspec[j], gflags[j], keep, win, wshort, ola, out, (k + j) * hop, s, pl, pls,
                      scr)
                nshort += gflags[j, 0]
                had_long |= 1 - gflags[j, 0]
                last_rs = gflags[j, 2]
            k += cnt
            pos += size
            continue
        if (b2 >> 6) != FRAME_AUDIO:
            break
        if _parse_at(view, pos + FRAME_HEADER_SIZE, pos + size - CRC_SIZE, index + k, st, nch,
                     short_allowed, lay, books, fa, quantizer, mu, rng):
            break
        _emit(nat, hdr, keep, win, wshort, ola, out, k * hop, s, pl, pls, scr)
        nshort += hdr[0]
        had_long |= 1 - hdr[0]
        last_rs = hdr[2]
        k += 1
        pos += size
    info[0] = k
    info[1] = nshort
    info[2] = had_long
    info[3] = last_rs
    return pos


def _as_bytes(data, what) -> bytes:
    """``data`` as bytes; an int (``bytes(10**11)`` would allocate that many zeros) or a str is
    refused with a TypeError naming what is expected."""
    if isinstance(data, (int, str)):
        raise TypeError(f"{what}() takes bytes (a pacodec frame or stream), "
                        f"not {type(data).__name__}")
    return bytes(data)


class FrameDecoder:
    """The normative decode of one stream configuration: an audio payload to one hop of PCM.

    :meth:`parse` parses and dequantizes a payload into :attr:`spectrum` (natural order) and
    returns its window flags; :meth:`synth` runs IMDCT, window and overlap-add on any spectrum
    (the decoded one, or a concealment's).  All arrays are allocated here, once.
    """

    def __init__(self, cfg: StreamConfig, books=None):
        self.config = cfg
        # the codes and contexts of the stream's version (FORMAT.md §7)
        self._books = books if books is not None else load_codebooks(version=cfg.version)
        self._rng = np.array([0], dtype=np.uint32)       # reseeded every frame (§8.4)
        self._lay = layout_for(cfg)
        n, ch = cfg.hop, cfg.channels
        mu_ = self._lay.max_units
        self._ola = np.zeros((ch, 2 * n))
        self._s = (n - cfg.overlap) // 2
        self.spectrum = np.zeros((ch, n))
        self._hdr = np.zeros(6, dtype=np.int64)
        self._fa = tuple(FrameArrays(
            hdr=self._hdr, max_band=np.zeros(ch, dtype=np.int64),
            ms_mode=np.zeros(max(ch // 2, 1), dtype=np.int64),
            ms_flags=np.zeros((max(ch // 2, 1), mu_), dtype=np.int64),
            books=np.zeros((ch, mu_), dtype=np.int64), sf=np.zeros((ch, mu_), dtype=np.int64),
            q=np.zeros((ch, n), dtype=np.int64), cod=np.zeros((ch, n)), nat=self.spectrum))
        lay = self._lay
        self._layk = tuple(LayoutArrays(lay.nb_long, lay.nb_short, lay.ub_long, lay.ub_short,
                                        lay.perm_short))
        B = self._books
        self._booksk = tuple(DecodeBooks(B.ctx, B.count, B.first, B.offset, B.symbols, B.lut))
        self._qi = cfg.quantizer_code
        ns = cfg.short_hop if cfg.short_blocks else cfg.overlap
        self._win = np.stack([block_window(n, cfg.overlap if not ls else ns,
                                           cfg.overlap if not rs else ns, cfg.window_shape)
                              for ls in (0, 1) for rs in (0, 1)])
        self._wshort = block_window(ns, ns, ns, cfg.window_shape) if cfg.short_blocks \
            else np.zeros(2)
        self._plan = plan(n).arrays
        self._plan_s = plan(cfg.short_hop).arrays if cfg.short_blocks else self._plan
        ns = cfg.short_hop if cfg.short_blocks else 8
        self._res = np.zeros(5, dtype=np.int64)          # decode_run's scan result
        self._st = np.zeros(3, dtype=np.int64)           # decode_run's bit reader state
        # frame groups (version 8): up to MAX_GROUP members' flags and spectra (decode_run)
        g = MAX_GROUP if cfg.version >= ct.GROUP_VERSION else 1
        self._grp = tuple(GroupScratch(on=int(g > 1), lengths=np.zeros(MAX_GROUP, dtype=np.int64),
                                       flags=np.zeros((g, 3), dtype=np.int64),
                                       spectra=np.zeros((g, ch, n))))
        self._scr = tuple(SynthScratch(
            y=np.zeros(2 * n), u=np.zeros(n), work=np.zeros(n // 2, np.complex128),
            ys=np.zeros(2 * ns), us=np.zeros(ns), works=np.zeros(max(ns // 2, 1), np.complex128)))

    def parse(self, payload, index: int):
        """Parse and dequantize the audio payload of frame ``index`` (the noise generator is
        seeded from it, FORMAT.md §8.4) into :attr:`spectrum`; returns the window flags
        ``(is_short, left_short, right_short)`` or raises :class:`FormatError`."""
        cfg = self.config
        self._rng[0] = noise_seed(index)
        # a writable copy: decode_run passes the scanner's (writable) buffer, and one array type
        # keeps decode_payload at one compiled signature
        buf = np.frombuffer(bytearray(payload), dtype=np.uint8)
        st = reader_state(len(buf))
        err = decode_payload(buf, st, cfg.channels, cfg.short_blocks, self._layk, self._booksk,
                             self._fa, self._qi, float(cfg.mu), self._rng)
        if err:
            raise FormatError({1: "truncated frame payload", 2: "invalid frame payload",
                               3: "invalid window switching"}[err])
        hdr = self._hdr
        return int(hdr[0]), int(hdr[1]), int(hdr[2])

    def synth(self, coefs, is_short, ls, rs) -> np.ndarray:
        """One hop of float32 PCM ``(hop, channels)`` from the spectrum ``coefs``."""
        cfg = self.config
        out = np.empty((cfg.hop, cfg.channels), dtype=np.float32)
        synth(coefs, is_short, self._win[2 * ls + rs], self._wshort, self._ola, out, 0, self._s,
              self._plan, self._plan_s, self._scr)
        return out

    def run(self, view, pos, n, final, P, p0, seq, index, out, keep, info):
        """Decode the clean audio frames at ``view[pos:n]`` (see :func:`decode_run`) into ``out``
        (hop rows per frame); returns the position after them.  ``seq``/``index``: the sequence
        number and frame index the first must have; ``keep`` receives the last long spectrum,
        ``info`` [frames, short frames, had a long frame, last right_short]."""
        cfg = self.config
        return decode_run(view, pos, n, final, P, p0, ct._CRC_XPOW, self._res, seq, index,
                          cfg.channels, cfg.short_blocks, self._layk, self._booksk, self._fa,
                          self._qi, float(cfg.mu), self._rng, self._win, self._wshort, self._ola,
                          self._s, self._plan, self._plan_s, self._scr, self._st, out, keep, info,
                          self._grp)


class Timeline:
    """Where decoded samples lie in the encoder's input (FORMAT.md §6.3): the samples before
    input sample 0 (the encoder delay) are dropped and the stream is cut at its total length.

    While the total length is unknown (no header length, no end-of-stream frame yet) the latest
    frame's output is held back, because only the last frame carries padding past the end;
    :meth:`release` returns it once the end is known.  :meth:`place` takes the PCM of one frame
    and the input index of its first sample (default: right after the previous frame) and returns
    ``(pcm, index)`` of what may be output now.
    """

    def __init__(self, channels: int = 0):
        self.total: int | None = None    # samples per channel of the input, when known
        self.pos: int | None = None      # input index of the next frame's first sample
        self._held = None
        self._channels = channels

    def start(self, frame_index: int, hop: int, delay: int):
        """The next frame placed is frame ``frame_index`` of the stream."""
        self.pos = frame_index * hop - delay

    def skip(self, nsamples: int):
        """Jump over ``nsamples`` of input (a gap that is not concealed)."""
        self.pos += nsamples

    def place(self, pcm, at: int | None = None):
        if at is None:
            at = self.pos
        self.pos = at + len(pcm)
        lo = max(0, -at)
        pcm, at = pcm[lo:], at + lo
        if self.total is not None:
            return pcm[:max(0, self.total - at)], at
        held, self._held = self._held, (pcm, at)
        return held if held is not None else (pcm[:0], at)

    def release(self):
        """The held-back output ``(pcm, index)``, cut at the total length if known now, or
        ``None``."""
        if self._held is None:
            return None
        (pcm, at), self._held = self._held, None
        if self.total is not None:
            pcm = pcm[:max(0, self.total - at)]
        return pcm, at


class Decoder:
    """Decode pacodec streams or packets.  Not thread-safe: one decoder per thread.

    ``strict=True`` turns a damaged frame (CRC mismatch, invalid syntax) into a
    :class:`~pacodec.errors.FormatError` instead of concealing it.  ``warn_truncation=False``
    keeps :meth:`finish` from warning about a missing end-of-stream frame (``truncated`` still
    tells), ``warn_trailing=False`` about data after the end-of-stream frame (``errors`` still
    tells).  ``errors`` lists the problems found (bounded: the first and last ones, with the
    total in ``errors.count``).  ``conceal`` is the concealment method of lost frames, one of
    :data:`pacodec.conceal.METHODS` (None: :data:`~pacodec.conceal.DEFAULT_METHOD`).
    """

    def __init__(self, *, strict: bool = False, warn_truncation: bool = True,
                 warn_trailing: bool = True, warn_config_conflict: bool = True,
                 conceal: str | None = None):
        if conceal is not None and conceal not in CONCEAL_METHODS:
            raise ValueError(f"unknown concealment method {conceal!r}; choose one of "
                             f"{', '.join(CONCEAL_METHODS)}")
        self.conceal_method = conceal
        self.strict = strict
        self.warn_config_conflict = warn_config_conflict
        self.config_conflict = False    # the header's config gave way to the in-band one
        self.warn_truncation = warn_truncation
        self.warn_trailing = warn_trailing
        self.config: StreamConfig | None = None
        self.samplerate = self.channels = self.frame_size = None
        self.crc_errors = 0
        self.frames = 0
        self.short_frames = 0
        self.truncated = False          # finish() found no end-of-stream frame
        self.errors = ProblemLog()
        self.timeline = Timeline()
        self._scanner = ct.Scanner()
        self._header_checked = False
        self._sniff = False
        self._started = False
        self._next_seq = None
        self._index = None             # frame index of the next expected frame (§8.4)
        self._ended = False
        self._after_end = 0             # bytes after the end-of-stream frame (not decoded)
        self._fd: FrameDecoder | None = None
        self._concealer: Concealer | None = None
        self._frame_at = 0             # stream offset of the frame being handled
        self._last_end = None          # stream offset after the last accepted frame
        self._had_header = False
        self._header_config = False    # the config came from the stream header only
        self._run_out = None           # output of the frames _run_frames decoded
        self.metadata: Metadata | None = None   # the stream's metadata block (FORMAT.md §3.3)
        self.metadata_error: str | None = None     # why the metadata block there is ignored

    @property
    def concealed(self) -> int:
        """Frames replaced by concealment so far."""
        return self._concealer.concealed if self._concealer is not None else 0

    @property
    def ended(self) -> bool:
        """Byte-stream mode: the end-of-stream frame was decoded (later input is not)."""
        return self._ended

    @property
    def after_end(self) -> int:
        """Byte-stream mode: bytes seen after the end-of-stream frame (not decoded)."""
        return self._after_end

    @property
    def settled(self) -> bool:
        """Byte-stream mode: the configuration is final (a frame was decoded under it, or it came
        from a config frame); a header's config alone may still give way to the in-band one."""
        return self.config is not None and (self._started or not self._header_config)

    @property
    def total_length(self) -> int | None:
        """Samples per channel of the stream, once known (header or end-of-stream frame)."""
        return self.timeline.total

    @total_length.setter
    def total_length(self, n):
        self.timeline.total = n

    # ------------------------------------------------------------------ setup
    def configure(self, cfg: StreamConfig):
        """Set the stream configuration (from a header or config frame, or known out of band).
        A different one later raises :class:`FormatError`."""
        if self.config is not None:
            if cfg != self.config:
                raise FormatError("stream configuration changed mid-stream")
            return
        self.config = cfg
        self.samplerate, self.channels, self.frame_size = cfg.samplerate, cfg.channels, cfg.hop
        self.delay = cfg.delay
        self.timeline._channels = cfg.channels
        self._fd = FrameDecoder(cfg)
        self._run_keep = np.zeros((cfg.channels, cfg.hop))
        self._run_info = np.zeros(4, dtype=np.int64)
        self._concealer = Concealer(cfg.channels, cfg.hop, self._fd.synth, windows=self._fd._win,
                                    offset=self._fd._s, samplerate=cfg.samplerate,
                                    method=self.conceal_method)

    def join(self, cfg: StreamConfig, total_length: int | None = None):
        """Byte-stream mode from a frame boundary in the middle of a stream (a seek): no stream
        header follows; ``cfg`` and ``total_length`` are already known."""
        self.configure(cfg)
        self.total_length = total_length
        self._header_checked = True

    # ------------------------------------------------------------------ byte-stream mode
    def feed(self, data) -> np.ndarray:
        """Decode what ``data`` completes; returns float32 ``(n, channels)`` (may be empty)."""
        return self._cat(self.feed_blocks(data))

    def feed_blocks(self, data):
        """Like :meth:`feed`, but yields the output in pieces of at most RUN_FRAMES frames
        (bounded memory per step whatever the concealment produces).  Exhaust it before the
        next call."""
        if self._ended:
            self._after_end += len(data)
            return iter(())
        self._scanner.feed(_as_bytes(data, "feed"))
        return self._parse(final=False)

    def finish(self) -> np.ndarray:
        """End of input: decode the rest and report truncation (a warning, once)."""
        return self._cat(self.finish_blocks())

    def finish_blocks(self):
        """Like :meth:`finish`, yielding the output in pieces."""
        yield from self._parse(final=True)
        held = self.timeline.release()
        if held is not None and len(held[0]):
            yield held[0]
        sc = self._scanner
        rest = len(sc.buf) - sc.pos
        if rest and not self._ended:
            self._note(f"{rest} trailing bytes at offset {sc.offset} are not "
                       "a complete frame (truncated stream)")
        if not self._ended and self.config is not None:
            self.truncated = True
            if self.warn_truncation:
                self.warn_truncation = False
                warnings.warn("pacodec: stream ended without an end-of-stream frame (truncated?)",
                              RuntimeWarning, stacklevel=3)
        if self._after_end:
            msg = (f"data after the end-of-stream frame is not decoded (at least "
                   f"{self._after_end} bytes; concatenated streams: only the first is decoded)")
            self.errors.append(msg)
            if self.warn_trailing:
                warnings.warn(f"pacodec: {msg}", RuntimeWarning, stacklevel=3)
        if self.config is None:
            raise FormatError("no pacodec stream found in the input")
        # samples promised by the length but missing from a truncated stream are not invented
        sc.clear()

    def _cat(self, blocks):
        outs = [b for b in blocks if len(b)]
        if not outs:
            return self._empty()
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _note(self, msg):
        self.errors.append(msg)
        if self.strict:
            raise FormatError(msg)

    def _read_header(self, final):
        sc = self._scanner
        hdr = sc.read_header(final)
        if hdr is None:
            return False
        self._header_checked = True
        if hdr is False:
            self._sniff = True         # no header: frames must follow (checked in _parse)
        elif isinstance(hdr, VersionError):
            raise hdr                      # a valid header of another version: not damage
        elif isinstance(hdr, FormatError):
            # the in-band config frames make the header redundant: decode without it
            self._note(f"{hdr} (byte offset 0); decoding from the first config frame")
        else:
            self.configure(hdr.config)
            self.total_length = hdr.total_length
            self.metadata = sc.metadata
            if sc.metadata_error is not None:
                # damaged tags are no damage to the audio: reported, never fatal (not even strict)
                self.metadata_error = (f"{sc.metadata_error} (byte offset {ct.HEADER_SIZE}): "
                                       "its tags and loudness are ignored")
                self.errors.append(self.metadata_error)
            self._had_header = True
            self._header_config = True
        return True

    def _parse(self, final: bool):
        if not self._header_checked and not self._read_header(final):
            return
        sc = self._scanner
        if self._sniff:
            # input without a header must show a sync word within one maximal frame (FORMAT.md
            # §12's limits); until one shows there is nothing to decode
            if sc.has_sync():
                self._sniff = False
            elif final or len(sc.buf) - sc.pos >= ct.MAX_FRAME_SIZE:
                raise FormatError("not a pacodec stream (no header and no sync word)")
            else:
                return
        for kind, off, val in sc.events(final, run=self._run_frames):
            if kind == ct.SCAN_RUN:
                outs, self._run_out = self._run_out, None
                for out in outs:
                    if len(out):
                        yield out
            elif kind == ct.SCAN_FRAME:
                try:
                    self._frame_at = off
                    out = self._handle(val, packet=False)
                except VersionError:
                    raise
                except FormatError as e:
                    self.crc_errors += 1
                    self._note(f"frame at byte offset {off}: {e}")
                    sc.reject()
                    continue
                if out:
                    yield from out
                if self._ended:
                    self._after_end += len(sc.buf) - sc.pos - val.size
                    sc.clear()
                    return
            elif kind == ct.SCAN_DAMAGED:
                nbytes, nbad, reason = val
                self.crc_errors += nbad
                more = f" ({nbad} sync words whose frame fails)" if nbad > 1 else ""
                if not nbad:
                    if self._started:
                        self._note(f"skipped {nbytes} bytes of garbage at byte offset {off}")
                elif reason.startswith("not a frame"):
                    self._note(f"skipped {nbytes} bytes of garbage at byte offset {off}{more}")
                else:
                    self._note(f"frame at byte offset {off}: {reason}; {nbytes} bytes "
                               f"skipped{more}")
            else:
                self._note(f"frame at byte offset {off} runs past the end of the input ({val} "
                           "bytes left, truncated or damaged)")

    def _empty(self):
        return np.zeros((0, self.channels or 0), dtype=np.float32)

    # ------------------------------------------------------------------ packet mode
    def decode_packet(self, frame) -> np.ndarray:
        """Decode one frame (bytes as made by ``Encoder.encode``) or conceal a lost one (None).
        A frame group (FORMAT.md §4, version 8: an encoder's ``group`` > 1) gives the hops of all
        its members, or, damaged, one concealed hop like any bad frame (UDP packets never carry
        groups: :func:`pacodec.packet.unpack_packet` refuses them)."""
        if frame is None:
            if self.config is None:
                return np.zeros((0, 0), dtype=np.float32)
            return self._cat(self._conceal(1))
        try:
            fr = ct.parse_frame_at(_as_bytes(frame, "decode_packet"), 0)
            if fr is None:
                raise FormatError("frame is truncated")
            out = self._handle(fr, packet=True)
        except VersionError as e:
            # packets may come from anyone: report (errors), do not stop a receiver
            self._note(str(e))
            return np.zeros((0, 0), dtype=np.float32)
        except FormatError as e:
            self.crc_errors += 1
            self._note(f"bad frame: {e}")
            if self.config is None:
                return np.zeros((0, 0), dtype=np.float32)
            return self._cat(self._conceal(1))
        if out is None:
            return np.zeros((0, self.channels or 0), dtype=np.float32)
        return self._cat(out)

    # ------------------------------------------------------------------ frames
    def _handle(self, fr, packet: bool):
        """Decode one CRC-valid frame; returns a list of output blocks (or None)."""
        payload = fr.payload
        if fr.ftype == ct.FRAME_EOS:
            n = ct.unpack_eos_frame(fr)
            if self.total_length is not None and n != self.total_length:
                raise FormatError("end-of-stream length disagrees with the header")
            self.total_length = n
            if not packet:
                self._ended = True
                held = self.timeline.release()
                outs = [held[0]] if held is not None else []
                if self._started:      # frames lost just before the end are concealed too
                    outs.extend(self._conceal_gap(fr))
                return outs
            return None
        index = None
        if fr.ftype == ct.FRAME_CONFIG:
            try:
                cfg, index, payload = ct.unpack_config_frame(fr)
            except VersionError:
                if self.config is None:    # CRC-valid and nothing decodable yet: refuse
                    raise
                raise FormatError("config frame of another format version") from None
            if self._header_config and not self._started and cfg != self.config:
                # the stream header contradicts the in-band config before any audio: the
                # in-band one (repeated every second) wins
                self._note_config_conflict(cfg)
            self.configure(cfg)
            self._header_config = False
            if not self._started:          # adopted even if the audio payload proves invalid:
                self._index, self._next_seq = index + 1, (fr.seq + 1) & 0xFF   # count on from it
        members = None
        if fr.ftype == ct.FRAME_GROUP:
            # an audio group (FORMAT.md §4) in a version-8 stream; damaged in earlier versions;
            # before the version is known it is skipped whole, as an audio frame is (§4.3)
            if self.config is None:
                return None
            if self.config.version < ct.GROUP_VERSION:
                raise FormatError("reserved frame type 3 (a group, in a version-8 stream only)")
            members = ct.group_members(payload)
        if self.config is None:
            return None                    # joined mid-stream: wait for a config
        # the frame's index (§8.4): carried by config frames, else counted from the sequence
        # numbers since the last frame (a stream with a header starts at frame 0)
        if index is None:
            if self._index is None:
                index = fr.seq if self._had_header else 0
            else:
                index = self._index + ((fr.seq - self._next_seq) & 0xFF)
        # parse first: a frame whose payload is invalid changes no state, so it counts as lost
        # (the next frame's sequence number shows the gap and it is concealed); a group is
        # damaged as a whole when any member is invalid
        fd = self._fd
        if members is None:
            parsed = [(fd.spectrum, fd.parse(payload, index))]
        else:
            parsed = []
            for j, p in enumerate(members):
                try:
                    flags = fd.parse(p, index + j)
                except FormatError as e:
                    raise FormatError(f"group member {j} of {len(members)}: {e}") from None
                parsed.append((fd.spectrum.copy(), flags))
        outs = []
        for j, (spectrum, (is_short, ls, rs)) in enumerate(parsed):
            seq = (fr.seq + j) & 0xFF
            if is_short:
                self.short_frames += 1
            if not self._started:
                self._started = True
                # a stream with a header starts at frame 0, so seq = frame index there
                self.timeline.start(index, self.config.hop, self.config.delay)
                self._next_seq = seq
            elif not packet and j == 0:
                outs.extend(self._conceal_gap(fr, following=(spectrum, is_short)))
            self._next_seq = (seq + 1) & 0xFF
            self._index = index + j + 1
            if not packet:
                self._last_end = self._frame_at + fr.size
            pcm = fd.synth(spectrum, is_short, ls, rs)
            self._concealer.observe(spectrum, is_short, rs, pcm)
            self.frames += 1
            outs.append(pcm if packet else self.timeline.place(pcm)[0])
        return outs

    def _run_frames(self, view, pos, n, final, P, p0):
        """The scanner's ``run`` callback: decode the clean audio frames that continue the
        stream at ``view[pos:]`` in one kernel call (:meth:`FrameDecoder.run`), exactly as
        :meth:`_handle` would one by one; their output waits in ``_run_out`` for the
        ``SCAN_RUN`` event.  Returns where the frames end (``pos`` if none was decoded)."""
        if not self._started or self._ended or self._fd is None:
            return pos
        # where decode_run would stop before its first frame, without its call: no complete
        # frame header, not an audio frame, the frame not complete, not the expected sequence
        # number (each chunk of input ends so; config frames come every second)
        if n - pos < FRAME_HEADER_SIZE:
            return pos
        b2 = int(view[pos + 2])
        kind = b2 >> 6
        if ((kind != FRAME_AUDIO and not (kind == FRAME_GROUP and self._fd._grp[0]))
                or int(view[pos + 4]) != self._next_seq
                or pos + FRAME_HEADER_SIZE + ((b2 & 0x3F) << 8 | int(view[pos + 3]))
                + CRC_SIZE > n):
            return pos
        cfg = self.config
        out = np.empty((RUN_FRAMES * cfg.hop, cfg.channels), dtype=np.float32)
        info = self._run_info
        stop = self._fd.run(view, pos, n, final, P, p0, self._next_seq, self._index, out,
                            self._run_keep, info)
        k = int(info[0])
        if not k:
            return pos
        out = out[:k * cfg.hop]
        self.frames += k
        self.short_frames += int(info[1])
        self._next_seq = (self._next_seq + k) & 0xFF
        self._index += k
        self._last_end = self._scanner.base + stop
        if info[2]:
            self._concealer.observe(self._run_keep, 0, int(info[3]), out)
        else:
            self._concealer.observe(self._fd.spectrum, 1, int(info[3]), out)
        tl = self.timeline
        if tl.total is None and k > 1:
            # the length is unknown: the time line holds back only the last frame, as it would
            # frame by frame (an end-of-stream frame may cut what is held, nothing before it)
            self._run_out = (tl.place(out[:(k - 1) * cfg.hop])[0],
                             tl.place(out[(k - 1) * cfg.hop:])[0])
        else:
            self._run_out = (tl.place(out)[0],)
        return stop

    def _note_config_conflict(self, cfg):
        def describe(c, other):       # the main fields, and any other that differs
            d = f"{c.samplerate} Hz, {c.channels} ch, hop {c.hop}, {c.quantizer}"
            more = [f"{f.name} {getattr(c, f.name)}" for f in dataclasses.fields(c)
                    if f.name not in ("samplerate", "channels", "hop", "quantizer")
                    and getattr(c, f.name) != getattr(other, f.name)]
            return ", ".join([d] + more)
        msg = (f"the stream header's configuration ({describe(self.config, cfg)}) contradicts "
               f"the in-band one ({describe(cfg, self.config)}); using the in-band one")
        self.errors.append(msg)
        if self.strict:
            raise FormatError(msg)
        self.config_conflict = True
        if self.warn_config_conflict:
            warnings.warn(f"pacodec: {msg}", RuntimeWarning, stacklevel=4)
        self.config = None

    def _conceal_gap(self, fr, following=None):
        """Byte-stream mode: conceal the frames missing before ``fr`` (from the sequence numbers),
        as many as the bytes since the last accepted frame could have held (see CONCEAL_FREE)."""
        gap = (fr.seq - self._next_seq) & 0xFF
        if not gap:
            return
        self.errors.append(f"{gap} frame(s) missing before byte offset {self._frame_at}")
        between = self._frame_at - (self._last_end or 0)
        if self.config.version >= ct.GROUP_VERSION:
            free, per = CONCEAL_FREE_V8, MIN_FRAME_BYTES_V8
        else:
            free, per = CONCEAL_FREE, MIN_FRAME_BYTES
        n = min(gap, free + max(0, between) // per)
        yield from self._conceal(n, trim=True, following=following)
        if n < gap:                    # a splice: skip the time of the frames not concealed
            self.timeline.skip((gap - n) * self.config.hop)

    def _conceal(self, count: int, trim: bool = False, following=None):
        """Replace ``count`` lost frames (see :mod:`pacodec.conceal`), trimmed in byte-stream
        mode; yields the output frame by frame."""
        for pcm in self._concealer.conceal(count, following):
            yield self.timeline.place(pcm)[0] if trim and self.timeline.pos is not None else pcm
        if self._next_seq is not None:
            self._next_seq = (self._next_seq + count) & 0xFF
            self._index += count       # lost frames keep their place in the frame count (§8.4)
