"""``PacFile``: a context-managed ``.pac`` file for reading (blocks, seeking by time) and writing.

Reading streams the file in chunks through one :class:`~pacodec.decoder.Decoder`, so memory does
not grow with the file.  Seeking (FORMAT.md §10) bisects byte offsets for the last config frame
at or before the target, decodes from there and discards the first frame (its overlap partner is
missing) and the samples before the target.

Writing goes to a temporary file beside the target (``.NAME.pacodec-partial-PID-HEX``), locked
with ``flock`` while it exists under that name and renamed into place only when complete; partial
files left by a killed process are recognised by that name and a free lock, and removed by the
next write into the same directory.
"""
from __future__ import annotations

import collections
import contextlib
import io
import math
import os
import re
import secrets
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from . import container as ct
from .decoder import Decoder
from .errors import FormatError, PacodecError, ProblemLog, VersionError

__all__ = ["PacFile", "Info", "info", "atomic_output", "PARTIAL_RE"]

CHUNK = 1 << 16
# bytes fed to the decoder at a time: bounds the audio one read produces (a frame can be ~15
# bytes for 2048 x 8 samples, plus bounded concealment), hence the memory of streaming reads
READ_CHUNK = 1 << 13
# ... from a seekable file, where reading blocks on nothing: 8 times fewer feeds, so the decoder's
# fixed cost per feed (the scanner's CRC prefix, a kernel call per run of frames and one per
# frame at each chunk's end) is paid 8 times less often; the output is still pulled in blocks
# of at most decoder.RUN_FRAMES frames
FILE_READ_CHUNK = 1 << 16
PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.pacodec-partial-(?P<pid>\d+)-[0-9a-f]{8}$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _lock(fd) -> str:
    """Try an exclusive advisory ``flock`` on ``fd`` without waiting: ``"taken"``, ``"held"``
    (another open file holds it) or ``"unsupported"`` (no ``flock`` here, or a file system that
    refuses it)."""
    try:
        import fcntl
    except ImportError:
        return "unsupported"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    except OSError:
        return "unsupported"
    return "taken"


#: the partial files this process has open for writing (absolute paths).  The cleanup never
#: opens these: where ``flock`` is emulated with per-process POSIX locks (NFS), another
#: descriptor of the same process would neither see the lock nor leave it in place on close.
_OPEN_PARTIALS: set = set()


def _same_file(path, st) -> bool:
    try:
        cur = os.lstat(path)
    except OSError:
        return False
    return (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino)


def clean_stale_partials(directory: str) -> list[str]:
    """Remove partial outputs in ``directory`` whose writer is gone; returns their paths.

    Every writer holds an exclusive ``flock`` on its partial from the moment the file has its
    name until it is renamed into place or removed (a writer that finds its fresh file gone
    before it got the lock starts again under a new name, see :func:`_create_partial`).  So a
    partial whose lock can be taken has no live writer -- whatever its pid, which may have been
    reused, or belong to another PID namespace -- and is removed while the lock is held.  Only
    where locks do not work (no ``flock``, a file system refusing it) does the old heuristic
    decide: the pid in the name is not alive here, and the file is not empty and under a minute
    old.
    """
    import stat
    import time
    removed = []
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return removed
    for name in names:
        m = PARTIAL_RE.match(name)
        if not m:
            continue
        path = os.path.join(directory, name)
        if os.path.abspath(path) in _OPEN_PARTIALS:
            continue
        flags = os.O_NOFOLLOW | os.O_NONBLOCK if hasattr(os, "O_NOFOLLOW") else 0
        try:
            fd = os.open(path, os.O_RDWR | flags)   # write access: NFS needs it for LOCK_EX
        except OSError:
            try:
                fd = os.open(path, os.O_RDONLY | flags)
            except OSError:
                continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            state = _lock(fd)
            if state == "held":
                continue                             # a live writer
            if state == "unsupported" and (
                    _pid_alive(int(m.group("pid")))
                    or (st.st_size == 0 and time.time() - st.st_mtime < 60)):
                continue
            if _same_file(path, st):                 # still the file we hold the lock on
                os.unlink(path)
                removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


NAME_MAX = 255


def _partial_name(path: str) -> str:
    """``.NAME.pacodec-partial-PID-HEX`` beside ``path``; NAME is shortened (in bytes) so the
    whole name stays within NAME_MAX when the output's own name is long."""
    directory, base = os.path.split(path)
    tail = f".pacodec-partial-{os.getpid()}-{secrets.token_hex(4)}".encode()
    b = os.fsencode(base)[:NAME_MAX - 1 - len(tail)]
    return os.path.join(directory, os.fsdecode(b"." + b + tail))


def _create_partial(path: str, made: dict):
    """Create and lock a fresh partial file for ``path`` and return it; ``made`` gets its name
    (``"tmp"``, set before the file is created) and file object (``"fh"``) as soon as each
    exists, so that the caller's cleanup can remove the file whenever an exception lands --
    including a signal handler's, which Python may run right after ``open`` returns even with
    the signal blocked in this thread (another thread, numpy's BLAS pool say, takes it).

    Between ``open`` and ``flock`` the new file is unlocked, and another process's cleanup may
    take its lock and remove it.  So once locked, the file is checked to still be the one under
    its name; if it is not (or that cleanup holds the lock), it is dropped and a new name
    tried.  From then on the lock is held until the file is renamed into place or removed."""
    for _ in range(50):
        made["tmp"] = tmp = _partial_name(path)
        try:
            fh = open(tmp, "xb")
        except FileExistsError:             # not ours (names are random): another name
            del made["tmp"]
            continue
        made["fh"] = fh
        state = _lock(fh.fileno())
        if state == "unsupported" or (state == "taken"
                                      and _same_file(tmp, os.fstat(fh.fileno()))):
            _OPEN_PARTIALS.add(os.path.abspath(tmp))
            return fh
        with contextlib.suppress(OSError):  # our own, uniquely named: a cleanup had it
            os.unlink(tmp)
        fh.close()
        made.clear()
    raise PacodecError(f"cannot create a partial file beside {path}: another process keeps "
                       f"removing it")


#: POSIX renames an open file; the partial is renamed (or removed) before it is closed, so its
#: lock covers it until it no longer has a partial's name
_RENAME_OPEN = os.name == "posix"


@contextlib.contextmanager
def atomic_output(path: str, *, force: bool = False, inputs=()):
    """Yield a binary file object whose content replaces ``path`` only if the block completes.

    Refuses to overwrite an existing ``path`` unless ``force``, and never writes over one of
    ``inputs`` (the same file under another name included).  Partial files of dead writers in
    the target directory are removed first (:func:`clean_stale_partials`).
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
    made = {}
    try:
        fh = _create_partial(os.path.join(directory, os.path.basename(path)), made)
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        if not _RENAME_OPEN:
            fh.close()
        os.replace(made["tmp"], path)
        fh.close()
    except BaseException:
        tmp, fh = made.get("tmp"), made.get("fh")
        if tmp and _RENAME_OPEN:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if fh is not None:
            fh.close()
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        if made.get("tmp"):
            _OPEN_PARTIALS.discard(os.path.abspath(made["tmp"]))


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
    # no end-of-stream frame: ``frames``/``duration`` are then what the frames present decode
    # to (FORMAT.md §6.3), and ``declared_frames`` is the header's length (None: none given)
    truncated: bool = False
    declared_frames: int | None = None
    tags: dict = field(default_factory=dict)   # {KEY: value} of the metadata block (§3.3)
    loudness: float | None = None   # LUFS (ITU-R BS.1770) of the encoder's input
    gain: float | None = None       # dB to ReplayGain 2.0's -18 LUFS: -18 - loudness
    format_version: int = 0         # the stream's format version (FORMAT.md §3.1)
    #: least width in bins of a long frame's scalefactor band: 4 << min_band (§3.1, §5.1)
    min_band_width: int = 4
    #: frame groups (FORMAT.md §4, version 8): how many group frames hold the audio frames, and
    #: the most frames one holds (0 and 0: none)
    groups: int = 0
    max_group: int = 0

    def as_dict(self):
        return asdict(self)


def _open(file, mode):
    if isinstance(file, (str, os.PathLike)):
        return open(file, mode), True
    return file, False


class PacFile:
    """A ``.pac`` stream on disk or in a binary file object.

    Read: ``PacFile(path)``; ``read(frames=-1)``, ``blocks(blocksize)``, ``seek_time(t)``,
    ``seek(frame)``, ``tell()``.  Write: ``PacFile(path, "w", samplerate=..., channels=...)``
    plus the coding options of :class:`~pacodec.Encoder` (none: VBR at the default quality;
    ABR is ``abr=B`` here, ``mode`` being the file's);
    ``write(data)``; closing flushes the encoder and publishes the file.
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
        self._warned_trailing = False
        self._warned_conflict = False
        self._version_error = None     # a config frame of another format version seen by a search
        head = fh.read(ct.HEADER_SIZE)
        try:
            seekable = fh.seekable()
        except (AttributeError, OSError, ValueError):
            seekable = False
        # a pipe keeps the small reads: a larger read would wait for more of a live stream
        self._read_chunk = FILE_READ_CHUNK if seekable else READ_CHUNK
        try:
            hdr = ct.unpack_header(head)
        except VersionError:
            raise
        except FormatError:
            hdr = None
        damaged = hdr is None and head[:4] == ct.MAGIC
        if seekable:
            # the first in-band config: the stream's config when the header is damaged or
            # missing, and the one that wins (with the decoder's warning) when they contradict
            try:
                found = self._config_at_or_after(ct.HEADER_SIZE if hdr else 0, config=True)
            except OSError:
                found = None
            fh.seek(0)
            initial = fh.read(ct.HEADER_SIZE)
        else:
            # a pipe: read up to the first config frame and decode those bytes first
            found, initial = self._first_config_in_stream(head)
        inband = found[2] if found is not None else None
        if hdr is not None:
            cfg, total = hdr.config, hdr.total_length
            if inband is not None and inband != cfg and not strict:
                cfg = inband
        else:
            if inband is None and self._version_error is not None:
                raise self._version_error       # a stream of another version: not damage
            if inband is None or (strict and damaged):    # strict: only a stream without any
                ct.unpack_header(head)                      # header; raises the header's error
            cfg, total = inband, None
        self._total = total
        self._data_start = ct.HEADER_SIZE if head[:4] == ct.MAGIC else 0
        self._restart(initial, 0)
        # one source of truth: the decoder's config once final (a header contradicting the
        # first in-band config gives way to it only if no frame was decoded under the header's)
        self._settle()
        cfg = self._dec.config if self._dec.config is not None else cfg
        self.config = cfg
        # the metadata block (FORMAT.md §3.3), read with the header: kept across seeks
        self.metadata = self._dec.metadata
        self.metadata_error = self._dec.metadata_error
        self.samplerate = cfg.samplerate
        self.channels = cfg.channels

    def _first_config_in_stream(self, head):
        """Unseekable input: read until the first valid config frame (at most MAX_SYNC_SEARCH
        bytes); returns ``((offset, index, config) or None, the bytes read)``."""
        sc = ct.Scanner()
        sc.synced = True
        sc.feed(head)
        data = bytearray(head)
        final = False
        while True:
            for kind, off, fr in sc.events(final):
                if kind == ct.SCAN_FRAME and fr.ftype == ct.FRAME_CONFIG:
                    try:
                        return (off, ct.config_frame_index(fr), ct.frame_config(fr)), bytes(data)
                    except VersionError as e:
                        self._version_error = self._version_error or e
                    except FormatError:
                        pass
            if final or len(data) > ct.MAX_SYNC_SEARCH:
                return None, bytes(data)
            chunk = self._fh.read(READ_CHUNK)
            final = not chunk
            data += chunk
            sc.feed(chunk)

    def _settle(self):
        """Decode ahead (keeping the output pending) until the decoder's configuration is final,
        the input ends or ``MAX_SYNC_SEARCH`` bytes were read."""
        nread = 0
        while not self._dec.settled and nread <= ct.MAX_SYNC_SEARCH:
            blk = next(self._blocks, None)
            if blk is not None:
                self._push(blk)
                continue
            chunk = b"" if self._dec.ended else self._fh.read(READ_CHUNK)
            if not chunk:
                return                 # _fill finishes the decoder (and reports) when read
            nread += len(chunk)
            self._blocks = self._dec.feed_blocks(chunk)

    def _restart(self, initial: bytes, pos: int):
        self._new_decoder()
        self._reset_output()
        self._pos = pos
        self._skip = 0
        if initial:
            self._push(self._dec.feed(initial))

    def _reset_output(self):
        self._pending = collections.deque()    # decoded blocks not read yet, oldest first
        self._npending = 0
        self._blocks = iter(())        # the decoder's output for the current chunk, frame by frame
        self._finishing = False
        self._eof = False

    def _push(self, out):
        if self._skip and len(out):
            d = min(self._skip, len(out))
            out = out[d:]
            self._skip -= d
        if len(out):
            self._pending.append(out)
            self._npending += len(out)

    def _new_decoder(self):
        # one warning of each kind per file: truncation, data after the end-of-stream frame,
        # a header contradicting the in-band config
        old = getattr(self, "_dec", None)
        self._warned_conflict = self._warned_conflict or (old is not None and old.config_conflict)
        self._dec = Decoder(strict=self._strict, warn_truncation=not self._warned,
                            warn_trailing=not self._warned_trailing,
                            warn_config_conflict=not self._warned_conflict)

    def _fill(self, n):
        """Decode until ``n`` samples are pending (all for ``n < 0``).  The decoder's output is
        pulled frame by frame, so a read holds ``n`` samples plus one gap's concealment at most,
        whatever one chunk of input expands to."""
        while (n < 0 or self._npending < n) and not self._eof:
            blk = next(self._blocks, None)
            if blk is not None:
                self._push(blk)
                continue
            if self._finishing:
                self._eof = True
                self._warned = self._warned or self._dec.truncated
                self._warned_trailing = self._warned_trailing or self._dec.after_end > 0
                if self._dec.total_length is not None:
                    self._total = self._dec.total_length
                break
            # after the end-of-stream frame nothing more is decoded: stop reading (the input
            # may be endless); the decoder reports what follows in the last chunk
            chunk = b"" if self._dec.ended else self._fh.read(self._read_chunk)
            if chunk:
                self._blocks = self._dec.feed_blocks(chunk)
            else:
                self._blocks = self._dec.finish_blocks()
                self._finishing = True

    def _take(self, frames):
        """Remove and return the first ``frames`` pending samples (all for ``frames < 0``)."""
        if frames < 0 or frames >= self._npending:
            frames = self._npending
        out, got = [], 0
        while got < frames:
            blk = self._pending[0]
            need = frames - got
            if len(blk) <= need:
                out.append(self._pending.popleft())
                got += len(blk)
            else:
                out.append(blk[:need])
                self._pending[0] = blk[need:]
                got += need
        self._npending -= frames
        if not out:
            return np.zeros((0, self.channels), dtype=np.float32)
        return out[0] if len(out) == 1 else np.concatenate(out)

    @property
    def frames(self):
        """Total samples per channel, if known (header or end-of-stream frame)."""
        return self._total

    @property
    def problems(self):
        return list(self._dec.errors)

    @property
    def tags(self) -> dict:
        """The stream's tags ``{KEY: value}`` (Vorbis comment names, upper case); ``{}`` when it
        has none (or its metadata block is damaged: see :attr:`metadata_error`)."""
        self._need_mode("r")
        return self.metadata.tags if self.metadata is not None else {}

    @property
    def loudness(self) -> float | None:
        """Integrated loudness of the encoder's input in LUFS (ITU-R BS.1770), if known."""
        self._need_mode("r")
        return self.metadata.loudness if self.metadata is not None else None

    @property
    def gain(self) -> float | None:
        """Playback gain in dB to ReplayGain 2.0's -18 LUFS (``-18 - loudness``), if known."""
        self._need_mode("r")
        return self.metadata.gain if self.metadata is not None else None

    def read(self, frames: int = -1) -> np.ndarray:
        self._need_mode("r")
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)):
            raise TypeError(f"read takes a number of frames (int), got {frames!r}")
        frames = int(frames)
        self._fill(frames)
        out = self._take(frames)
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
            self._restart(self._fh.read(ct.HEADER_SIZE), 0)
            self._skip = frame
            self._pos = frame
            return frame
        offset, index = found[:2]
        self._fh.seek(offset)
        self._new_decoder()
        self._dec.join(cfg, self._total)
        self._reset_output()
        first_out = index * cfg.hop - cfg.delay        # input index of the first output sample
        # drop the first frame's output (no overlap partner: index <= k - 1 makes
        # frame - first_out >= hop) and everything before the target
        self._skip = max(0, frame - max(first_out, 0))
        self._pos = frame
        return frame

    def _config_at_or_after(self, offset, config=False, stop=None):
        """(byte offset, frame index) of the first valid config frame starting in
        ``[offset, stop)`` (and its :class:`StreamConfig` third if ``config``; frames with an
        invalid one are skipped).  The search ends after ``MAX_SYNC_SEARCH`` bytes."""
        limit = offset + ct.MAX_SYNC_SEARCH
        stop = limit if stop is None else min(stop, limit)
        for off, fr in ct.scan_frames(self._fh, offset, stop):
            if fr.ftype != ct.FRAME_CONFIG:
                continue
            try:
                index = ct.config_frame_index(fr)
                if not config:
                    return off, index
                return off, index, ct.frame_config(fr)
            except VersionError as e:
                self._version_error = self._version_error or e
            except FormatError:
                pass
        return None

    def _config_before(self, k):
        """(byte offset, frame index) of the last config frame with index <= ``k`` (found by
        bisection: every probe scans only up to the upper bound, so the total work is linear in
        the file size even when the frame indices are not increasing), else the first one."""
        lo = self._data_start
        first = self._config_at_or_after(lo)
        if first is None:
            return None
        best = first
        hi = self._fh.seek(0, io.SEEK_END)
        while hi - lo > CHUNK:
            mid = (lo + hi) // 2
            found = self._config_at_or_after(mid, stop=hi)
            if found is None or found[1] > k:
                hi = mid
            else:
                if found[1] >= best[1]:
                    best = found
                lo = found[0] + 1
        # one linear pass from the final window on
        for off, fr in ct.scan_frames(self._fh, lo):
            if fr.ftype != ct.FRAME_CONFIG:
                continue
            try:
                index = ct.config_frame_index(fr)
            except FormatError:
                continue
            if index > k:
                break
            best = (off, index)
        return best

    # ------------------------------------------------------------------ write
    def _init_write(self, file, samplerate, channels, force, total_frames, encoder_args):
        if samplerate is None or channels is None:
            raise PacodecError("writing needs samplerate and channels")
        from .encoder import Encoder       # here: a decoding process needs none of it
        from .ratelimit import CODING_KEYWORDS, coding_options
        given = {k: encoder_args.pop(k) for k in CODING_KEYWORDS if k in encoder_args}
        opts = coding_options(samplerate, channels, **given)       # the input's limits too
        if opts.note:
            warnings.warn(f"pacodec: {opts.note}", UserWarning, stacklevel=3)
        self._enc = Encoder(samplerate, channels, total_frames=total_frames,
                            **opts.encoder_kwargs(), **encoder_args)
        self.samplerate, self.channels = self._enc.samplerate, self._enc.channels
        self.config = self._enc.config
        if isinstance(file, (str, os.PathLike)):
            self._out = self._stack.enter_context(atomic_output(file, force=force))
        else:
            self._out = file
        self._out_start = self._out.tell() if self._seekable_out() else 0
        self._out.write(self._enc.header())
        self._written = 0

    def _seekable_out(self) -> bool:
        try:
            return bool(self._out.seekable())
        except (AttributeError, OSError, ValueError):
            return False

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
            if (enc.total_frames is None or enc.loudness is not None) and self._seekable_out():
                # the length, and the loudness the metadata block holds once the input ended
                if enc.total_frames is None:
                    enc.total_frames = enc._consumed
                end = self._out.tell()
                self._out.seek(self._out_start)
                self._out.write(enc.header())
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
    sc = ct.Scanner()
    sc.synced = True
    sc.feed(bytes(data[start:]))
    for kind, off, _ in sc.events(final=True):
        if kind == ct.SCAN_FRAME:
            return start + off
    return -1


def _check_frame(fr, cfg):
    """What a scan can check of a frame beyond its CRC (the payload is not parsed); returns the
    config of a config frame."""
    if fr.ftype == ct.FRAME_EOS:
        ct.unpack_eos_frame(fr)
    if fr.ftype == ct.FRAME_GROUP:
        # an audio group (FORMAT.md §4) in a version-8 stream, damaged in earlier versions (§4.1;
        # before the version is known it is skipped, see _info); its count and lengths are
        # checked here
        if cfg is None:
            return cfg
        if cfg.version < ct.GROUP_VERSION:
            raise FormatError("reserved frame type 3 (a group, in a version-8 stream only)")
        ct.group_members(fr.payload)
    if fr.ftype == ct.FRAME_CONFIG:
        c = ct.unpack_config_frame(fr)[0]
        if cfg is not None and c != cfg:
            raise FormatError("config differs from the stream's")
        return c
    return cfg


def info(file) -> Info:
    """Scan a ``.pac`` file (without decoding audio) and describe it, with any damage found.

    The file is read in chunks through :class:`~pacodec.container.Scanner`: memory stays
    constant and the time is linear in the file size.  Input without a valid frame in its first
    ``MAX_SYNC_SEARCH`` bytes is refused; the problem list keeps the first and last problems.
    """
    name = os.fspath(file) if isinstance(file, (str, os.PathLike)) else getattr(file, "name", "<stream>")
    try:
        fh, own = _open(file, "rb") if isinstance(file, (str, os.PathLike)) else (file, False)
    except OSError as e:
        raise PacodecError(f"cannot open {name}: {e.strerror or e}") from None
    try:
        return _info(fh, name)
    except OSError as e:
        raise PacodecError(f"cannot read {name}: {e.strerror or e}") from None
    finally:
        if own:
            fh.close()


def _info(fh, name) -> Info:
    problems = ProblemLog()
    sc = ct.Scanner()
    nread = 0

    def read():
        nonlocal nread
        data = fh.read(CHUNK)
        nread += len(data)
        return data

    data = read()
    while len(data) < ct.HEADER_SIZE:
        more = read()
        if not more:
            break
        data += more
    sc.feed(data)
    head = sc.read_header(final=True)
    header_error = None
    cfg = total = None
    if isinstance(head, VersionError):
        raise head             # a CRC-valid header of another format version: not damage
    if isinstance(head, FormatError):
        # damaged header: describe the stream by its first valid in-band config
        header_error = head
        problems.append(f"stream header at byte offset 0: {head} (the in-band config is used)")
    elif head is False:
        # no header (allowed, e.g. a recorded live stream), or a damaged magic: then its bytes
        # show up as a damaged region at offset 0
        header_error = FormatError("not a pacodec stream (bad magic)")
    else:
        cfg, total = head.config, head.total_length
        if sc.metadata_error is not None:
            problems.append(f"{sc.metadata_error} (byte offset {ct.HEADER_SIZE}): its tags "
                            "and loudness are ignored")
    meta = sc.metadata if head else None
    nframes = 0            # audio frames that pass their CRC
    groups = max_group = 0  # group frames (§4) among them, the largest's count
    expect = None          # sequence number of the next frame
    bad_at = bad_what = None   # a damaged region: where it starts, what is wrong there
    eos = False
    had_header = cfg is not None
    next_seq = next_index = first_index = last_index = None   # frame indices (FORMAT.md §4.3)
    end_pos = None         # where the scan stopped (after the end-of-stream frame, truncation)
    memo = [None, -1]      # _next_frame(tail, s) for s >= memo[0] up to memo[1]

    def next_frame(start):
        # candidates near the end that claim long lengths are common in damaged tails: answer
        # them from the last scan instead of rescanning (keeps the scan linear)
        if memo[0] is not None and start >= memo[0] and (memo[1] < 0 or start <= memo[1]):
            return memo[1]
        local = start - sc.base
        memo[0], memo[1] = start, _next_frame(sc.buf, local)
        if memo[1] >= 0:
            memo[1] += sc.base
        return memo[1]

    def damaged(end, at_end):
        return (f"frame {nframes} at byte offset {bad_at}: {bad_what}; "
                + (f"{end - bad_at} bytes skipped, resynchronised at byte offset {end}"
                   if not at_end else f"the remaining {end - bad_at} bytes are not frames"))

    final = False
    try:
        while end_pos is None:
            for kind, off, val in sc.events(final):
                if kind == ct.SCAN_DAMAGED:
                    if bad_at is None:
                        bad_at, bad_what = off, val[2]
                    continue
                if kind == ct.SCAN_TRUNCATED:
                    if next_frame(off + 1) >= 0:
                        if bad_at is None:
                            bad_at, bad_what = off, ("its length runs past the end of the file "
                                                     "but frames follow (damaged length)")
                        continue
                    if bad_at is not None:
                        problems.append(damaged(off, False))
                        bad_at = None
                    problems.append(f"truncated frame {nframes} at byte offset {off} "
                                    f"({val} bytes, file ends early)")
                    end_pos = off
                    break
                fr = val
                try:
                    cfg = _check_frame(fr, cfg)
                except FormatError as e:
                    if bad_at is None:
                        bad_at, bad_what = off, str(e)
                    sc.reject()
                    continue
                if bad_at is not None:
                    problems.append(damaged(off, False))
                    bad_at = None
                if fr.ftype == ct.FRAME_GROUP and cfg is None:
                    continue           # not joined yet: skipped whole (FORMAT.md §4.3)
                if expect is not None and fr.seq != expect:
                    problems.append(f"{(fr.seq - expect) & 0xFF} frame(s) missing before byte "
                                    f"offset {off}")
                # a group (FORMAT.md §4) is its members' frames, the first numbered as its own
                count = fr.payload[0] if fr.ftype == ct.FRAME_GROUP else 1
                expect = (fr.seq + count) & 0xFF
                if fr.ftype == ct.FRAME_EOS:
                    eos = True
                    n = ct.unpack_eos_frame(fr)
                    if total is not None and n != total:
                        problems.append(f"end-of-stream length {n} disagrees with the header "
                                        f"({total})")
                    total = n
                    end_pos = off + fr.size
                    break
                nframes += count
                if fr.ftype == ct.FRAME_GROUP:
                    groups += 1
                    max_group = max(max_group, count)
                if fr.ftype == ct.FRAME_CONFIG:
                    index = ct.unpack_config_frame(fr)[1]
                elif next_index is None:
                    index = fr.seq if had_header else 0
                else:
                    index = next_index + ((fr.seq - next_seq) & 0xFF)
                if first_index is None:
                    first_index = index
                last_index, next_index, next_seq = (index + count - 1, index + count,
                                                    (fr.seq + count) & 0xFF)
            if end_pos is not None or final:
                break
            data = read()
            if data:
                sc.feed(data)
            else:
                final = True
    except FormatError:
        if sc.synced or header_error is None:
            raise
        raise header_error from None
    if cfg is None:
        raise header_error or FormatError("no pacodec config found in the input")
    if eos:
        # count what follows the end-of-stream frame without keeping it (bounded read)
        while len(data) and nread - end_pos <= ct.MAX_SYNC_SEARCH:
            data = read()
        if nread > end_pos:
            more = "more than " if nread - end_pos > ct.MAX_SYNC_SEARCH else ""
            problems.append(f"{more}{nread - end_pos} bytes after the end-of-stream frame")
    elif end_pos is None and bad_at is not None:
        problems.append(damaged(nread, True))
    declared = total
    if not eos:
        problems.append("no end-of-stream frame (truncated file?)")
        # what the frames present decode to: output positions from the first frame's to the
        # end of the last one's, cut at the header's length (FORMAT.md §6.3)
        if last_index is None:
            total = 0
        else:
            n, delay = cfg.hop, cfg.delay
            end = (last_index + 1) * n - delay
            if declared is not None:
                end = min(end, declared)
            total = max(0, end - max(0, first_index * n - delay))
    size = nread
    duration = None if total is None else total / cfg.samplerate
    bitrate = None if not duration else 8 * size / duration / 1000
    dcr = None if total is None or total == 0 else 1 - size / (total * cfg.channels * 2)
    return Info(path=name, samplerate=cfg.samplerate, channels=cfg.channels, frames=total,
                duration=duration, quantizer=cfg.quantizer, mu=cfg.mu, frame_size=cfg.hop,
                overlap=cfg.overlap, low_delay=not cfg.short_blocks, window_shape=cfg.window_shape,
                delay=cfg.delay, codec_frames=nframes, file_bytes=size, bitrate_kbps=bitrate,
                dcr=dcr, problems=list(problems), truncated=not eos, declared_frames=declared,
                tags=meta.tags if meta is not None else {},
                loudness=meta.loudness if meta is not None else None,
                gain=meta.gain if meta is not None else None, format_version=cfg.version,
                min_band_width=cfg.long_band_width, groups=groups, max_group=max_group)
