"""``PacFile``: a context-managed ``.pac`` file for reading (blocks, seeking by time) and writing.

Reading streams the file in chunks through one :class:`~pacodec.decoder.Decoder`, so memory does
not grow with the file.  Seeking (FORMAT.md §10) bisects byte offsets for the last config frame
at or before the target, decodes from there and discards the first frame (its overlap partner is
missing) and the samples before the target.

Writing goes to a temporary file beside the target (``.NAME.pacodec-partial-PID``) that is renamed
into place only when complete; partial files left by a killed process are recognised by that name
and removed by the next write into the same directory.
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import secrets
from dataclasses import asdict, dataclass, field

import numpy as np

from . import bitstream as bs
from .decoder import Decoder
from .encoder import Encoder
from .errors import FormatError, PacodecError

__all__ = ["PacFile", "Info", "info", "atomic_output", "PARTIAL_RE"]

CHUNK = 1 << 16
# bytes fed to the decoder at a time: bounds the audio one read produces (a frame can be ~15
# bytes for 2048 x 8 samples, plus bounded concealment), hence the memory of streaming reads
READ_CHUNK = 1 << 13
PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.pacodec-partial-(?P<pid>\d+)-[0-9a-f]{8}$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_lock(fh) -> bool:
    """Take an exclusive advisory lock on ``fh`` without waiting (True if taken or if the
    platform has no ``flock``)."""
    try:
        import fcntl
    except ImportError:
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True              # a file system without locks: the pid test alone decides
    return True


def clean_stale_partials(directory: str) -> list[str]:
    """Remove partial outputs in ``directory`` left by a writer that is gone.

    A partial is removed only if (1) the pid in its name is not alive here, (2) no process
    holds the ``flock`` every writer keeps on its partial while writing (a live writer in
    another PID namespace -- a container on shared storage -- has a pid that looks dead here,
    but its lock is seen), and (3) it is not an empty file younger than a minute (a writer
    between creating and locking it).
    """
    import time
    removed = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return removed
    for name in names:
        m = PARTIAL_RE.match(name)
        if not m or _pid_alive(int(m.group("pid"))):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_size == 0 and time.time() - st.st_mtime < 60:
                    continue
                if _try_lock(fh):
                    os.unlink(path)
                    removed.append(path)
        except OSError:
            pass
    return removed


NAME_MAX = 255


def _partial_name(path: str) -> str:
    """``.NAME.pacodec-partial-PID-HEX`` beside ``path``; NAME is shortened (in bytes) so the
    whole name stays within NAME_MAX when the output's own name is long."""
    directory, base = os.path.split(path)
    tail = f".pacodec-partial-{os.getpid()}-{secrets.token_hex(4)}".encode()
    b = os.fsencode(base)[:NAME_MAX - 1 - len(tail)]
    return os.path.join(directory, os.fsdecode(b"." + b + tail))


@contextlib.contextmanager
def atomic_output(path: str, *, force: bool = False, inputs=()):
    """Yield a binary file object whose content replaces ``path`` only if the block completes.

    Refuses to overwrite an existing ``path`` unless ``force``, and never writes over one of
    ``inputs`` (the same file under another name included).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    for src in inputs:
        with contextlib.suppress(OSError):
            if os.path.exists(path) and os.path.samefile(src, path):
                raise PacodecError(f"refusing to overwrite the input file {path}")
    if os.path.isdir(path):
        raise PacodecError(f"{path} is a directory")
    if os.path.exists(path) and not force:
        raise PacodecError(f"{path} exists (use --force / force=True to overwrite)")
    if not os.path.isdir(directory):
        raise PacodecError(f"directory {directory} does not exist")
    clean_stale_partials(directory)
    tmp = _partial_name(os.path.join(directory, os.path.basename(path)))
    fh = open(tmp, "xb")
    try:
        _try_lock(fh)                # held until closed: see clean_stale_partials
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, path)
    except BaseException:
        fh.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class Info:
    """What ``pacodec info`` reports about a stream."""

    path: str
    samplerate: int
    channels: int
    frames: int | None              # samples per channel (None: unknown and no EOS frame)
    duration: float | None
    quantizer: str
    mu: int
    frame_size: int
    overlap: int
    low_delay: bool
    window_shape: str
    delay: int
    codec_frames: int
    file_bytes: int
    bitrate_kbps: float | None
    dcr: float | None               # data compression rate vs 16-bit PCM: 1 - compressed/PCM
    problems: list = field(default_factory=list)

    def as_dict(self):
        return asdict(self)


def _open(file, mode):
    if isinstance(file, (str, os.PathLike)):
        return open(file, mode), True
    return file, False


class PacFile:
    """A ``.pac`` stream on disk or in a binary file object.

    Read: ``PacFile(path)``; ``read(frames=-1)``, ``blocks(blocksize)``, ``seek_time(t)``,
    ``seek(frame)``, ``tell()``.  Write: ``PacFile(path, "w", samplerate=..., channels=...,
    bitrate=...)``; ``write(data)``; closing flushes the encoder and publishes the file.
    Like ``soundfile``, writing replaces an existing file (atomically: the old one stays intact
    until the new one is complete); ``force=False`` refuses instead.  The command line refuses
    unless ``--force``.
    """

    def __init__(self, file, mode: str = "r", *, samplerate=None, channels=None, strict=False,
                 force=True, total_frames=None, **encoder_args):
        if mode not in ("r", "w"):
            raise ValueError("mode must be 'r' or 'w'")
        self.mode = mode
        self.name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else getattr(file, "name", "<stream>")
        self._stack = contextlib.ExitStack()
        try:
            if mode == "r":
                self._init_read(file, strict)
            else:
                self._init_write(file, samplerate, channels, force, total_frames, encoder_args)
        except BaseException:
            self._stack.close()
            raise

    # ------------------------------------------------------------------ read
    def _init_read(self, file, strict):
        try:
            fh, own = _open(file, "rb")
        except OSError as e:
            raise PacodecError(f"cannot open {self.name}: {e.strerror or e}") from None
        if own:
            self._stack.callback(fh.close)
        self._fh = fh
        self._strict = strict
        self._warned = False
        head = fh.read(bs.HEADER_SIZE)
        try:
            hdr = bs.unpack_header(head)
        except FormatError:
            # a damaged header (or none): the config is repeated in-band, take the first one
            try:                               # (strict: only a stream without any header)
                damaged = head[:4] == bs.MAGIC
                found = None if strict and damaged else self._config_at_or_after(0, config=True)
            except OSError:                    # not seekable
                found = None
            if found is None:
                raise
            hdr, cfg, total = None, found[2], None
        else:
            cfg, total = hdr.config, hdr.total_length
        self.config = cfg
        self.samplerate = cfg.samplerate
        self.channels = cfg.channels
        self._total = total
        self._data_start = bs.HEADER_SIZE if head[:4] == bs.MAGIC else 0
        if hdr is None:
            fh.seek(0)
            head = fh.read(bs.HEADER_SIZE)
        self._restart(head, 0)

    def _restart(self, initial: bytes, pos: int):
        self._new_decoder()
        self._pending = np.zeros((0, self.channels), dtype=np.float32)
        self._eof = False
        self._pos = pos
        self._skip = 0
        if initial:
            self._push(self._dec.feed(initial))

    def _push(self, out):
        if self._skip and len(out):
            d = min(self._skip, len(out))
            out = out[d:]
            self._skip -= d
        if len(out):
            self._pending = np.concatenate([self._pending, out]) if len(self._pending) else out

    def _new_decoder(self):
        self._dec = Decoder(strict=self._strict)
        self._dec._warned_trunc = self._warned     # one truncation warning per file

    def _fill(self, n):
        while (n < 0 or len(self._pending) < n) and not self._eof:
            chunk = self._fh.read(READ_CHUNK)
            if not chunk:
                self._eof = True
                self._push(self._dec.finish())
                self._warned = self._warned or self._dec._warned_trunc
                if self._dec.total_length is not None:
                    self._total = self._dec.total_length
                break
            self._push(self._dec.feed(chunk))

    @property
    def frames(self):
        """Total samples per channel, if known (header or end-of-stream frame)."""
        return self._total

    @property
    def problems(self):
        return list(self._dec.errors)

    def read(self, frames: int = -1) -> np.ndarray:
        self._need_mode("r")
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)):
            raise TypeError(f"read takes a number of frames (int), got {frames!r}")
        frames = int(frames)
        self._fill(frames)
        if frames < 0 or frames >= len(self._pending):
            out, self._pending = self._pending, np.zeros((0, self.channels), dtype=np.float32)
        else:
            out, self._pending = self._pending[:frames], self._pending[frames:]
        self._pos += len(out)
        return out

    def blocks(self, blocksize: int = 4096):
        if blocksize <= 0:
            raise ValueError("blocksize must be positive")
        while True:
            b = self.read(blocksize)
            if not len(b):
                return
            yield b

    def tell(self) -> int:
        return self._pos

    def seek_time(self, seconds: float) -> int:
        """Position the reader at ``seconds`` (a finite number >= 0); returns the sample index."""
        try:
            ok = math.isfinite(seconds)
        except TypeError:
            raise TypeError(f"seek_time takes seconds as a number, got {seconds!r}") from None
        if not ok:
            raise ValueError(f"cannot seek to {seconds} seconds")
        return self.seek(int(round(seconds * self.samplerate)))

    def seek(self, frame: int) -> int:
        """Position the reader at sample ``frame`` (an int, per channel); returns the new position.
        Seconds go to :meth:`seek_time`."""
        self._need_mode("r")
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise TypeError(f"seek takes a sample index (int), got {frame!r}; "
                            f"use seek_time(seconds) to seek by time")
        frame = int(frame)
        if frame < 0:
            raise ValueError("cannot seek before the start")
        if self._total is not None:
            frame = min(frame, self._total)
        cfg = self.config
        k = (frame + cfg.delay) // cfg.hop          # frame whose output holds the target
        found = self._config_before(k - 1) if k > 1 else None
        if found is None or found[1] > k - 1:
            # no config frame before the target (start of the file, or a damaged or spliced
            # stream whose frame indices do not lead there): decode from the start and skip
            self._fh.seek(0)
            self._restart(self._fh.read(bs.HEADER_SIZE), 0)
            self._skip = frame
            self._pos = frame
            return frame
        offset, index = found[:2]
        self._fh.seek(offset)
        self._new_decoder()
        self._dec._configure(cfg)
        self._dec.total_length = self._total
        self._dec._header_checked = True
        self._pending = np.zeros((0, cfg.channels), dtype=np.float32)
        self._eof = False
        first_out = index * cfg.hop - cfg.delay        # input index of the first output sample
        # drop the first frame's output (no overlap partner: index <= k - 1 makes
        # frame - first_out >= hop) and everything before the target
        self._skip = max(0, frame - max(first_out, 0))
        self._pos = frame
        return frame

    def _config_at_or_after(self, offset, config=False):
        """(byte offset, frame index) of the first valid config frame at/after ``offset``
        (and its :class:`StreamConfig` third if ``config``; frames with an invalid one are skipped)."""
        fh = self._fh
        while True:
            fh.seek(offset)
            data = fh.read(CHUNK * 2)
            if len(data) < bs.FRAME_HEADER_SIZE:
                return None
            p = 0
            while True:
                p = bs.find_sync(data, p)
                if p < 0 or p + bs.FRAME_HEADER_SIZE + bs.CONFIG_SIZE + 4 + bs.CRC_SIZE > len(data):
                    break
                try:
                    fr = bs.parse_frame_at(data, p)
                except FormatError:
                    fr = None
                if fr is None and p > CHUNK:
                    break
                if fr is not None and fr.ftype == bs.FRAME_CONFIG:
                    index = int.from_bytes(fr.payload[bs.CONFIG_SIZE:bs.CONFIG_SIZE + 4], "big")
                    if not config:
                        return offset + p, index
                    try:
                        return offset + p, index, bs.unpack_config(fr.payload[:bs.CONFIG_SIZE])
                    except FormatError:
                        pass
                p += 1
            if len(data) < CHUNK * 2:
                return None
            offset += max(p, CHUNK) if p > 0 else CHUNK

    def _config_before(self, k):
        lo = self._data_start
        first = self._config_at_or_after(lo)
        if first is None:
            return None
        best = first
        hi = self._fh.seek(0, io.SEEK_END)
        while hi - lo > CHUNK:
            mid = (lo + hi) // 2
            found = self._config_at_or_after(mid)
            if found is None or found[1] > k:
                hi = mid
            else:
                if found[1] >= best[1]:
                    best = found
                lo = found[0] + 1
        # linear scan of the final window
        off = lo
        while True:
            found = self._config_at_or_after(off)
            if found is None or found[1] > k:
                break
            best = found
            off = found[0] + 1
        return best

    # ------------------------------------------------------------------ write
    def _init_write(self, file, samplerate, channels, force, total_frames, encoder_args):
        if samplerate is None or channels is None:
            raise PacodecError("writing needs samplerate and channels")
        self._enc = Encoder(samplerate, channels, total_frames=total_frames, **encoder_args)
        self.samplerate, self.channels = self._enc.samplerate, self._enc.channels
        self.config = self._enc.config
        if isinstance(file, (str, os.PathLike)):
            self._out = self._stack.enter_context(atomic_output(file, force=force))
        else:
            self._out = file
        self._out.write(self._enc.header())
        self._written = 0

    def write(self, data) -> None:
        self._need_mode("w")
        x = np.asarray(data)
        for fr in self._enc.encode(x):
            self._out.write(fr)
        self._written += len(x)

    def _need_mode(self, mode):
        if self.mode != mode:
            raise PacodecError(f"file is open for {'reading' if self.mode == 'r' else 'writing'}")

    # ------------------------------------------------------------------ context
    def close(self, _ok: bool = True):
        if self.mode == "w" and getattr(self, "_enc", None) is not None and _ok:
            enc, self._enc = self._enc, None
            for fr in enc.flush():
                self._out.write(fr)
            if enc.total_frames is None and self._out.seekable():
                end = self._out.tell()
                self._out.seek(0)
                self._out.write(bs.pack_header(enc.config, enc._consumed))
                self._out.seek(end)
        self._stack.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self._enc = None
            self._stack.__exit__(exc_type, exc, tb)
        return False


def _next_frame(data, start) -> int:
    """Offset of the next complete frame that passes its CRC at or after ``start``, or -1."""
    p = bs.find_sync(data, start)
    while p >= 0:
        try:
            if bs.parse_frame_at(data, p) is not None:
                return p
        except FormatError:
            pass
        p = bs.find_sync(data, p + 1)
    return -1


def _first_config(data):
    """The first valid in-band config of ``data`` (a :class:`StreamConfig`), or None."""
    p = _next_frame(data, 0)
    while p >= 0:
        fr = bs.parse_frame_at(data, p)
        if fr.ftype == bs.FRAME_CONFIG:
            with contextlib.suppress(FormatError):
                return bs.unpack_config(fr.payload[:bs.CONFIG_SIZE])
        p = _next_frame(data, p + 1)
    return None


def _check_frame(fr, cfg):
    """What a scan can check of a frame beyond its CRC (the payload is not parsed)."""
    if fr.ftype == bs.FRAME_EOS and len(fr.payload) != 6:
        raise FormatError("invalid end-of-stream frame")
    if fr.ftype == bs.FRAME_CONFIG:
        if len(fr.payload) < bs.CONFIG_SIZE + 4:
            raise FormatError("config frame is truncated")
        if bs.unpack_config(fr.payload[:bs.CONFIG_SIZE]) != cfg:
            raise FormatError("config differs from the stream's")
        if fr.payload[bs.CONFIG_SIZE + 3] != fr.seq:
            raise FormatError("config frame index disagrees with its sequence number")


def info(file) -> Info:
    """Scan a ``.pac`` file (without decoding audio) and describe it, with any damage found."""
    name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else getattr(file, "name", "<stream>")
    fh, own = _open(file, "rb") if isinstance(file, (str, os.PathLike)) else (file, False)
    try:
        data = fh.read()
    except OSError as e:
        raise PacodecError(f"cannot read {name}: {e.strerror or e}") from None
    finally:
        if own:
            fh.close()
    problems = []
    try:
        hdr = bs.unpack_header(data[:bs.HEADER_SIZE])
    except FormatError as e:
        # damaged (or no) header: describe the stream by its first valid in-band config
        found = _first_config(data)
        if found is None:
            raise
        cfg, total = found, None
        if data[:4] == bs.MAGIC:
            problems.append(f"stream header at byte offset 0: {e} (the in-band config is used)")
            pos = bs.HEADER_SIZE
        else:
            pos = 0            # no header (allowed, e.g. a recorded live stream), or a damaged
            #                    magic: then its bytes show up as a damaged region at offset 0
    else:
        cfg, total = hdr.config, hdr.total_length
        pos = bs.HEADER_SIZE
    nframes = 0            # audio frames that pass their CRC
    expect = None          # sequence number of the next frame
    bad_at = bad_what = None   # a damaged region: where it starts, what is wrong there
    eos = False

    memo = [len(data) + 1, -1]          # _next_frame(data, s) for s >= memo[0] up to memo[1]

    def next_frame(start):
        # candidates near the end that claim long lengths are common in damaged tails: answer
        # them from the last scan instead of rescanning (keeps the scan linear)
        if start >= memo[0] and (memo[1] < 0 or start <= memo[1]):
            return memo[1]
        memo[0], memo[1] = start, _next_frame(data, start)
        return memo[1]

    def damaged(end):
        return (f"frame {nframes} at byte offset {bad_at}: {bad_what}; "
                + (f"{end - bad_at} bytes skipped, resynchronised at byte offset {end}"
                   if end < len(data) else f"the remaining {end - bad_at} bytes are not frames"))

    while pos < len(data):
        fr = err = None
        if data[pos:pos + 2] != bs.SYNC_BYTES:
            err = "not a frame (no sync word)"
        else:
            try:
                fr = bs.parse_frame_at(data, pos)
                if fr is None and next_frame(pos + 1) >= 0:
                    raise FormatError("its length runs past the end of the file but frames "
                                      "follow (damaged length)")
                if fr is not None:
                    _check_frame(fr, cfg)
            except FormatError as e:
                err = str(e)
        if err is not None:
            if bad_at is None:
                bad_at, bad_what = pos, err
            nxt = bs.find_sync(data, pos + 1)
            pos = nxt if nxt >= 0 else len(data)
            continue
        if bad_at is not None:
            problems.append(damaged(pos))
            bad_at = None
        if fr is None:
            problems.append(f"truncated frame {nframes} at byte offset {pos} "
                            f"({len(data) - pos} bytes, file ends early)")
            break
        if expect is not None and fr.seq != expect:
            problems.append(f"{(fr.seq - expect) & 0xFF} frame(s) missing before byte offset {pos}")
        expect = (fr.seq + 1) & 0xFF
        if fr.ftype == bs.FRAME_EOS:
            eos = True
            n = int.from_bytes(fr.payload[:6], "big")
            if total is not None and n != total:
                problems.append(f"end-of-stream length {n} disagrees with the header ({total})")
            total = n
        else:
            nframes += 1
        pos += fr.size
        if eos and pos < len(data):
            problems.append(f"{len(data) - pos} bytes after the end-of-stream frame")
            break
    if bad_at is not None:
        problems.append(damaged(len(data)))
    if not eos:
        problems.append("no end-of-stream frame (truncated file?)")
    duration = None if total is None else total / cfg.samplerate
    bitrate = None if not duration else 8 * len(data) / duration / 1000
    dcr = None if total is None or total == 0 else 1 - len(data) / (total * cfg.channels * 2)
    return Info(path=name, samplerate=cfg.samplerate, channels=cfg.channels, frames=total,
                duration=duration, quantizer=cfg.quantizer, mu=cfg.mu, frame_size=cfg.hop,
                overlap=cfg.overlap, low_delay=not cfg.short_blocks, window_shape=cfg.window_shape,
                delay=cfg.delay, codec_frames=nframes, file_bytes=len(data), bitrate_kbps=bitrate,
                dcr=dcr, problems=problems)
