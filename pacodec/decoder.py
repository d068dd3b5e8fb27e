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

Per frame: payload parse (:func:`.bitstream.read_payload`) → dequantize and noise substitution
(:func:`reconstruct`) → inverse M/S → IMDCT, window, overlap-add.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import bitstream as bs
from ._jit import njit
from .bitio import reader_state
from .bitstream import read_payload
from .config import StreamConfig
from .errors import FormatError
from .mdct import imdct_kernel, plan
from .quantize import dequantize_unit, step
from .tables import NOISE_BOOK, load_codebooks
from .window import block_window

__all__ = ["Decoder", "reconstruct", "CONCEAL_DECAY"]

CONCEAL_DECAY = 0.6          # gain per consecutive lost frame (about -4.4 dB)
MAX_CONCEAL = 256            # frames concealed for one gap at most
# Byte-stream mode: a gap of lost frames is concealed only as far as the bytes between the two
# accepted frames could have held frames (every frame takes >= MIN_FRAME_BYTES), plus
# CONCEAL_FREE frames for a cut without damaged bytes.  A larger sequence jump is a splice, not
# a loss: the time line jumps instead, so a few bytes can never expand into 255 frames of audio.
CONCEAL_FREE = 8
MIN_FRAME_BYTES = 8
F32_MAX = float(np.finfo(np.float32).max)


@njit
def _xorshift(state):
    x = state[0]
    x ^= (x << np.uint32(13)) & np.uint32(0xFFFFFFFF)
    x ^= x >> np.uint32(17)
    x ^= (x << np.uint32(5)) & np.uint32(0xFFFFFFFF)
    state[0] = x
    return x


@njit
def reconstruct(q, books, sf, ub, nunits, quantizer, mu, rng, out):
    """Dequantize the units of one channel into ``out`` (coding order); noise units (book 7) get
    uniform noise scaled to the signalled RMS ``step(sf)`` (FORMAT.md §8.4)."""
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
            g = step(sf[u]) * np.sqrt((e - s) / max(acc, 1e-30))
            for i in range(s, e):
                out[i] *= g
        else:
            dequantize_unit(q, s, e, sf[u], quantizer, mu, out)


@njit
def inverse_ms(a, b, ub, nunits, flags):
    for u in range(nunits):
        if flags[u]:
            for i in range(ub[u], ub[u + 1]):
                m = a[i]
                s = b[i]
                a[i] = (m + s) * 0.7071067811865476
                b[i] = (m - s) * 0.7071067811865476


@njit
def synth(coefs, is_short, win, wshort, ola, out, s, pre, post, rev, tw, pre_s, post_s, rev_s,
          tw_s, y, u, work, ys, us, works):
    """IMDCT, window and overlap-add one frame of every channel; writes ``n`` samples per channel
    (padded time ``kN + s`` on, FORMAT.md §6.3) into ``out`` (n, channels) and shifts ``ola``."""
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
            out[i, c] = v
        for i in range(n):
            ola[c, i] = ola[c, n + i]
            ola[c, n + i] = 0.0


@njit
def decode_payload(buf, st, nch, short_allowed, nb_long, nb_short, hdr, mb, msm, msf, bk, sf, q,
                   ub_long, ub_short, count, first, offset, symbols, quantizer, mu, rng, cod, nat,
                   last, perm_short):
    """Parse, dequantize, noise-fill and undo M/S of one payload (natural order into ``nat``).

    Returns 0, or the error code of :func:`~pacodec.bitstream.read_payload`, or 3 for an invalid
    window combination.
    """
    err = read_payload(buf, st, nch, short_allowed, nb_long, nb_short, hdr, mb, msm, msf, bk, sf,
                       q, ub_long, ub_short, count, first, offset, symbols)
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
                last[c, i] = cod[c, i]
    return 0


def _as_bytes(data, what) -> bytes:
    """``data`` as bytes; an int (``bytes(10**11)`` would allocate that many zeros) or a str is
    refused with a TypeError naming what is expected."""
    if isinstance(data, (int, str)):
        raise TypeError(f"{what}() takes bytes (a pacodec frame or stream), "
                        f"not {type(data).__name__}")
    return bytes(data)


class Decoder:
    """Decode pacodec streams or packets.  Not thread-safe: one decoder per thread.

    ``strict=True`` turns a damaged frame (CRC mismatch, invalid syntax) into a
    :class:`~pacodec.errors.FormatError` instead of concealing it.
    """

    def __init__(self, *, strict: bool = False):
        self.strict = strict
        self.config: StreamConfig | None = None
        self.samplerate = self.channels = self.frame_size = None
        self.total_length: int | None = None
        self.concealed = 0
        self.crc_errors = 0
        self.frames = 0
        self.short_frames = 0
        self.errors: list[str] = []
        self._buf = bytearray()
        self._consumed_bytes = 0       # stream offset of _buf[0]
        self._started = False
        self._header_checked = False
        self._next_seq = None
        self._pos = None               # input-sample index of the next output sample
        self._ended = False
        self._held = None
        self._warned_trunc = False
        self._books = load_codebooks()
        self._rng = np.array([0x9E3779B9], dtype=np.uint32)
        self._conceal_rng = np.random.default_rng(7919)
        self._frame_at = 0             # stream offset of the frame being handled
        self._last_end = None          # stream offset after the last accepted frame
        self._had_header = False

    # ------------------------------------------------------------------ setup
    def _configure(self, cfg: StreamConfig):
        if self.config is not None:
            if cfg != self.config:
                raise FormatError("stream configuration changed mid-stream")
            return
        self.config = cfg
        self.samplerate, self.channels, self.frame_size = cfg.samplerate, cfg.channels, cfg.hop
        self.delay = cfg.delay
        self._lay = bs.layout_for(cfg)
        n, ch = cfg.hop, cfg.channels
        mu_ = self._lay.max_units
        self._ola = np.zeros((ch, 2 * n))
        self._s = (n - cfg.overlap) // 2
        self._q = np.zeros((ch, n), dtype=np.int64)
        self._bk = np.zeros((ch, mu_), dtype=np.int64)
        self._sf = np.zeros((ch, mu_), dtype=np.int64)
        self._msf = np.zeros((max(ch // 2, 1), mu_), dtype=np.int64)
        self._msm = np.zeros(max(ch // 2, 1), dtype=np.int64)
        self._mb = np.zeros(ch, dtype=np.int64)
        self._hdr = np.zeros(6, dtype=np.int64)
        self._cod = np.zeros((ch, n))
        self._nat = np.zeros((ch, n))
        self._last = np.zeros((ch, n))       # last long spectrum, for concealment
        self._lost_run = 0
        self._prev_short = False
        self._qi = cfg.quantizer_code
        ns = cfg.short_hop if cfg.short_blocks else cfg.overlap
        self._win = np.stack([block_window(n, cfg.overlap if not ls else ns,
                                           cfg.overlap if not rs else ns, cfg.window_shape)
                              for ls in (0, 1) for rs in (0, 1)])
        self._wshort = block_window(ns, ns, ns, cfg.window_shape) if cfg.short_blocks \
            else np.zeros(2)
        self._plan = plan(n)
        self._plan_s = plan(cfg.short_hop) if cfg.short_blocks else None
        self._y = np.zeros(2 * n)
        self._u = np.zeros(n)
        self._work = np.zeros(n // 2, np.complex128)
        ns = cfg.short_hop if cfg.short_blocks else 8
        self._ys = np.zeros(2 * ns)
        self._us = np.zeros(ns)
        self._works = np.zeros(max(ns // 2, 1), np.complex128)

    # ------------------------------------------------------------------ byte-stream mode
    def feed(self, data) -> np.ndarray:
        """Decode what ``data`` completes; returns float32 ``(n, channels)`` (may be empty)."""
        self._buf += _as_bytes(data, "feed")
        return self._parse(final=False)

    def finish(self) -> np.ndarray:
        """End of input: decode the rest and report truncation (a warning, once)."""
        out = self._parse(final=True)
        if self._held is not None:
            out = np.concatenate([out, self._release()]) if len(out) else self._release()
        if self._buf and not self._ended:
            self._note(f"{len(self._buf)} trailing bytes at offset {self._consumed_bytes} are not "
                       "a complete frame (truncated stream)")
        if not self._ended and self.config is not None and not self._warned_trunc:
            self._warned_trunc = True
            warnings.warn("pacodec: stream ended without an end-of-stream frame (truncated?)",
                          RuntimeWarning, stacklevel=2)
        if self.config is None:
            raise FormatError("no pacodec stream found in the input")
        # samples promised by the length but missing from a truncated stream are not invented
        self._buf.clear()
        return out

    def _note(self, msg):
        self.errors.append(msg)
        if self.strict:
            raise FormatError(msg)

    def _parse(self, final: bool) -> np.ndarray:
        outs = []
        buf = self._buf
        pos = 0
        if not self._header_checked:
            if len(buf) < 4 and not final:
                return self._empty()
            self._header_checked = True
            if bytes(buf[:4]) == bs.MAGIC:
                if len(buf) < bs.HEADER_SIZE:
                    if not final:
                        self._header_checked = False
                        return self._empty()
                    raise FormatError("stream header is truncated")
                try:
                    hdr = bs.unpack_header(bytes(buf[:bs.HEADER_SIZE]))
                except FormatError as e:
                    # the in-band config frames make the header redundant: decode without it
                    self._note(f"{e} (byte offset 0); decoding from the first config frame")
                else:
                    self._configure(hdr.config)
                    self.total_length = hdr.total_length
                    self._had_header = True
                pos = bs.HEADER_SIZE
            elif len(buf) >= 2 and buf[0] != bs.SYNC >> 8:
                if not final and len(buf) < 4:
                    return self._empty()
                if bs.find_sync(buf, 0) < 0:
                    raise FormatError("not a pacodec stream (no header and no sync word)")
        while not self._ended:
            if pos >= len(buf):
                break
            if buf[pos] != bs.SYNC >> 8 or (pos + 1 < len(buf) and buf[pos + 1] != bs.SYNC & 0xFF):
                nxt = bs.find_sync(buf, pos + 1)
                skipped = (nxt if nxt >= 0 else len(buf)) - pos
                if nxt < 0:
                    # keep a possible partial sync byte
                    keep = 1 if buf[-1] == bs.SYNC >> 8 else 0
                    if final or skipped - keep > 0:
                        self._note_garbage(pos, skipped - (0 if final else keep))
                    pos = len(buf) - (0 if final else keep)
                    break
                self._note_garbage(pos, skipped)
                pos = nxt
                continue
            try:
                fr = bs.parse_frame_at(buf, pos)
            except FormatError as e:
                self.crc_errors += 1
                self._note(f"frame at byte offset {self._consumed_bytes + pos}: {e}")
                pos += 1
                continue
            if fr is None:
                if not final:
                    break                  # wait for the rest of the frame
                # the input ends inside this candidate: a truncated last frame, or a damaged
                # length field / false sync word in front of complete frames -- look further
                self._note(f"frame at byte offset {self._consumed_bytes + pos} runs past the end "
                           f"of the input ({len(buf) - pos} bytes left, truncated or damaged)")
                nxt = bs.find_sync(buf, pos + 1)
                pos = nxt if nxt >= 0 else len(buf)
                continue
            try:
                self._frame_at = self._consumed_bytes + pos
                out = self._handle(fr, packet=False)
            except FormatError as e:
                self.crc_errors += 1
                self._note(f"frame at byte offset {self._consumed_bytes + pos}: {e}")
                pos += 1
                continue
            if out is not None and len(out):
                outs.append(out)
            pos += fr.size
        del buf[:pos]
        self._consumed_bytes += pos
        if self._ended:
            self._buf.clear()
        return np.concatenate(outs) if outs else self._empty()

    def _note_garbage(self, pos, nbytes):
        if nbytes > 0 and self._started:
            self._note(f"skipped {nbytes} bytes of garbage at byte offset {self._consumed_bytes + pos}")

    def _empty(self):
        return np.zeros((0, self.channels or 0), dtype=np.float32)

    # ------------------------------------------------------------------ packet mode
    def decode_packet(self, frame) -> np.ndarray:
        """Decode one frame (bytes as made by ``Encoder.encode``) or conceal a lost one (None)."""
        if frame is None:
            if self.config is None:
                return np.zeros((0, 0), dtype=np.float32)
            return self._conceal_frames(1, trim=False)
        try:
            fr = bs.parse_frame_at(_as_bytes(frame, "decode_packet"), 0)
            if fr is None:
                raise FormatError("frame is truncated")
            out = self._handle(fr, packet=True)
        except FormatError as e:
            self.crc_errors += 1
            self._note(f"bad frame: {e}")
            if self.config is None:
                return np.zeros((0, 0), dtype=np.float32)
            return self._conceal_frames(1, trim=False)
        if out is None:
            return np.zeros((0, self.channels or 0), dtype=np.float32)
        return out

    # ------------------------------------------------------------------ frames
    def _handle(self, fr, packet: bool):
        payload = fr.payload
        if fr.ftype == bs.FRAME_EOS:
            if len(payload) != 6:
                raise FormatError("invalid end-of-stream frame")
            n = int.from_bytes(payload, "big")
            if self.total_length is not None and n != self.total_length:
                raise FormatError("end-of-stream length disagrees with the header")
            self.total_length = n
            if not packet:
                self._ended = True
                outs = [self._release()]
                if self._started:      # frames lost just before the end are concealed too
                    outs.append(self._conceal_gap(fr))
                return np.concatenate(outs)
            return None
        index = None
        if fr.ftype == bs.FRAME_CONFIG:
            if len(payload) < bs.CONFIG_SIZE + 4:
                raise FormatError("config frame is truncated")
            cfg = bs.unpack_config(payload[:bs.CONFIG_SIZE])
            index = int.from_bytes(payload[bs.CONFIG_SIZE:bs.CONFIG_SIZE + 4], "big")
            if index & 0xFF != fr.seq:
                raise FormatError("config frame index disagrees with its sequence number")
            self._configure(cfg)
            payload = payload[bs.CONFIG_SIZE + 4:]
        if self.config is None:
            return None                    # joined mid-stream: wait for a config
        # parse first: a frame whose payload is invalid changes no state, so it counts as lost
        # (the next frame's sequence number shows the gap and it is concealed)
        is_short, ls, rs = self._parse_audio(payload)
        outs = []
        if not self._started:
            self._started = True
            # a stream with a header starts at frame 0, so seq = frame index there
            k0 = index if index is not None else (fr.seq if self._had_header else 0)
            self._pos = k0 * self.config.hop - self.config.delay
            self._next_seq = fr.seq
        elif not packet:
            outs.append(self._conceal_gap(fr))
        self._next_seq = (fr.seq + 1) & 0xFF
        if not packet:
            self._last_end = self._frame_at + fr.size
        pcm = self._synth(self._nat, is_short, ls, rs)
        self.frames += 1
        self._lost_run = 0
        outs.append(pcm if packet else self._trim(pcm))
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _conceal_gap(self, fr) -> np.ndarray:
        """Byte-stream mode: conceal the frames missing before ``fr`` (from the sequence numbers),
        as many as the bytes since the last accepted frame could have held (see CONCEAL_FREE)."""
        gap = (fr.seq - self._next_seq) & 0xFF
        if not gap:
            return self._empty()
        self.errors.append(f"{gap} frame(s) missing before byte offset {self._frame_at}")
        between = self._frame_at - (self._last_end or 0)
        n = min(gap, CONCEAL_FREE + max(0, between) // MIN_FRAME_BYTES)
        out = self._conceal_frames(n, trim=True)
        if n < gap:                    # a splice: skip the time of the frames not concealed
            self._pos += (gap - n) * self.config.hop
        return out

    def _trim(self, pcm):
        """Byte-stream output: drop samples before the input's start; cut at the total length.

        While the total length is unknown (no header length, no end-of-stream frame yet) the
        latest frame's output is held back, because only the last frame carries padding past the
        end; the end-of-stream frame or :meth:`finish` releases it.
        """
        n = len(pcm)
        a = self._pos
        self._pos += n
        lo = max(0, -a)
        pcm, a = pcm[lo:], a + lo
        if self.total_length is not None:
            return pcm[:max(0, self.total_length - a)]
        held, self._held = self._held, (pcm, a)
        return held[0] if held is not None else pcm[:0]

    def _release(self):
        """The held-back output, cut at the total length if it is known now."""
        if self._held is None:
            return self._empty()
        pcm, a = self._held
        self._held = None
        if self.total_length is not None:
            pcm = pcm[:max(0, self.total_length - a)]
        return pcm

    def _parse_audio(self, payload):
        """Parse and dequantize an audio payload into ``self._nat``; returns the window flags."""
        cfg = self.config
        lay = self._lay
        buf = np.frombuffer(payload, dtype=np.uint8)
        st = reader_state(len(buf))
        B = self._books
        err = decode_payload(buf, st, cfg.channels, cfg.short_blocks, lay.nb_long, lay.nb_short,
                             self._hdr, self._mb, self._msm, self._msf, self._bk, self._sf,
                             self._q, lay.ub_long, lay.ub_short, B.count, B.first, B.offset,
                             B.symbols, self._qi, float(cfg.mu), self._rng, self._cod, self._nat,
                             self._last, lay.perm_short)
        if err:
            raise FormatError({1: "truncated frame payload", 2: "invalid frame payload",
                               3: "invalid window switching"}[err])
        is_short, ls, rs = int(self._hdr[0]), int(self._hdr[1]), int(self._hdr[2])
        if is_short:
            self.short_frames += 1
        return is_short, ls, rs

    def _synth(self, coefs, is_short, ls, rs) -> np.ndarray:
        cfg = self.config
        p, ps = self._plan, self._plan_s or self._plan
        out = np.empty((cfg.hop, cfg.channels), dtype=np.float32)
        synth(coefs, is_short, self._win[2 * ls + rs], self._wshort, self._ola, out, self._s,
              p.pre, p.post, p.rev, p.tw, ps.pre, ps.post, ps.rev, ps.tw, self._y, self._u,
              self._work, self._ys, self._us, self._works)
        self._prev_short = bool(rs)
        return out

    def _conceal_frames(self, count: int, trim: bool) -> np.ndarray:
        """Replace ``count`` lost frames: the last long spectrum with random signs, fading out."""
        outs = []
        for _ in range(min(count, MAX_CONCEAL)):
            self._lost_run += 1
            self.concealed += 1
            g = CONCEAL_DECAY ** self._lost_run
            if g > 1e-9:
                signs = self._conceal_rng.integers(0, 2, self._last.shape) * 2.0 - 1.0
                coefs = self._last * signs * g
            else:                      # faded out: silence (the overlap tail still plays)
                coefs = np.zeros_like(self._last)
            pcm = self._synth(coefs, 0, int(self._prev_short), 0)
            outs.append(self._trim(pcm) if trim and self._pos is not None else pcm)
        if self._next_seq is not None:
            self._next_seq = (self._next_seq + count) & 0xFF
        return np.concatenate(outs) if outs else self._empty()
