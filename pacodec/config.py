"""Codec parameters as frozen, validated dataclasses.

:class:`StreamConfig` is everything a decoder needs (it is serialised in the stream header and
repeated in-band, see ``bitstreams/FORMAT.md``).  :class:`EncoderSettings` is what only the encoder
needs (rate control mode, bitrate, perceptual distance).  Both are validated once, on creation,
so no later stage re-checks them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UnsupportedError

__all__ = [
    "SUPPORTED_RATES", "QUANTIZERS", "WINDOW_SHAPES", "MAX_CHANNELS", "StreamConfig",
    "EncoderSettings", "default_hop", "default_group", "stream_config_for", "DEFAULT_QUANTIZER", "DEFAULT_MU",
    "DEFAULT_BITRATE", "DEFAULT_QUALITY", "MIN_BAND_WIDTH", "MAX_MIN_BAND", "MIN_BAND_VERSION",
]

#: Sample rates the format can signal (index = the 4-bit ``rate_index`` of the header).
SUPPORTED_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
#: Quantizer names (index = the 2-bit ``quantizer`` field).
QUANTIZERS = ("uniform", "mulaw", "power")
#: Window slope shapes (index = the 1-bit ``window_shape`` field).
WINDOW_SHAPES = ("sine", "kbd")
MAX_CHANNELS = 8
#: Defaults of every front end (API, CLI, GStreamer element): one place; applied by
#: :func:`pacodec.options.resolve` alone.
DEFAULT_QUANTIZER = "uniform"
DEFAULT_MU = 255
#: VBR quality when no rate option is given (about 121 kbit/s on 44.1 kHz stereo music; README)
DEFAULT_QUALITY = 7.0
#: kbit/s of CBR or ABR when that mode is asked for without a rate
DEFAULT_BITRATE = 128.0
#: Number of short blocks in a short frame.
SHORT_BLOCKS = 8
#: Least scalefactor band width in bins (FORMAT.md §5.1); a long transform's is
#: ``MIN_BAND_WIDTH << min_band``, ``min_band`` 0..MAX_MIN_BAND (a config field from version 5)
MIN_BAND_WIDTH = 4
MAX_MIN_BAND = 3
MIN_BAND_VERSION = 5


def _check_rate(samplerate) -> int:
    try:
        rate = int(samplerate)
    except (TypeError, ValueError):
        raise UnsupportedError(f"sample rate must be a number, got {samplerate!r}") from None
    if rate != samplerate or rate not in SUPPORTED_RATES:
        names = ", ".join(str(r) for r in SUPPORTED_RATES)
        raise UnsupportedError(
            f"unsupported sample rate {samplerate} Hz; supported rates are {names} Hz "
            "(resample first, e.g. with sox or soxr)")
    return rate


def _check_channels(channels) -> int:
    if not isinstance(channels, (int,)) or isinstance(channels, bool) or not 1 <= channels <= MAX_CHANNELS:
        raise UnsupportedError(
            f"unsupported channel count {channels!r}; pacodec codes 1 to {MAX_CHANNELS} channels")
    return channels


def default_hop(samplerate: int, low_delay: bool = False) -> tuple[int, int]:
    """The frame hop and long-window overlap the encoder uses at ``samplerate``.

    Normal mode: 1024 samples at 32-48 kHz (21-32 ms), scaled by powers of two elsewhere, with full
    (50 %) overlap.  Low-delay mode: a quarter of that with an overlap of half the hop, i.e. 256+128
    samples = 8 ms of algorithmic delay at 48 kHz.
    """
    rate = _check_rate(samplerate)
    if rate <= 12000:
        hop = 256
    elif rate <= 24000:
        hop = 512
    elif rate <= 48000:
        hop = 1024
    else:
        hop = 2048
    if low_delay:
        hop //= 4
        return hop, hop // 2
    return hop, hop


#: frame groups (FORMAT.md §4, version 8): the low-delay mode groups about this many samples of
#: frames per group frame, at most GROUP_MAX_DEFAULT frames
GROUP_SAMPLES = 1024
GROUP_MAX_DEFAULT = 8


def default_group(low_delay: bool, hop: int) -> int:
    """Frames per group frame an encoder writing a file uses by default (the one rule; streaming
    senders use 1, every frame leaving as soon as it is coded): 1 (no groups) in the normal
    mode; in the low-delay mode enough frames to span about GROUP_SAMPLES samples, at most
    GROUP_MAX_DEFAULT (4 at 48 kHz's 256-sample hop)."""
    if not low_delay:
        return 1
    return min(GROUP_MAX_DEFAULT, max(1, GROUP_SAMPLES // hop))


@dataclass(frozen=True)
class StreamConfig:
    """Everything the decoder needs; serialised by :mod:`pacodec.container`."""

    samplerate: int
    channels: int
    hop: int                 # samples per frame and channel (a power of two, 64..2048)
    overlap: int             # long-window slope length (power of two, <= hop)
    short_blocks: bool       # frames may switch to SHORT_BLOCKS short transforms
    window_shape: str = "sine"
    quantizer: str = DEFAULT_QUANTIZER
    mu: int = DEFAULT_MU     # mu-law parameter (only used by the mulaw quantizer)
    version: int = 8         # format version (FORMAT.md §3.1, §13)
    #: ``min_band`` field (FORMAT.md §3.1, version 5): a long transform's scalefactor bands are
    #: at least ``4 << min_band`` bins wide (§5.1); 0 in versions 3 and 4
    min_band: int = 0

    def __post_init__(self):
        _check_rate(self.samplerate)
        _check_channels(self.channels)
        for name in ("hop", "overlap"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 32 or v > 2048 or v & (v - 1):
                raise UnsupportedError(f"{name} must be a power of two in 32..2048, got {v!r}")
        if self.overlap > self.hop:
            raise UnsupportedError("overlap must not exceed the hop")
        if self.short_blocks and (self.overlap != self.hop or self.hop // SHORT_BLOCKS < 16):
            raise UnsupportedError("short blocks need a full-overlap window and hop >= 128")
        if self.window_shape not in WINDOW_SHAPES:
            raise UnsupportedError(f"window shape must be one of {', '.join(WINDOW_SHAPES)}")
        if self.quantizer not in QUANTIZERS:
            raise UnsupportedError(
                f"unknown quantizer {self.quantizer!r}; choose one of {', '.join(QUANTIZERS)}")
        if not isinstance(self.mu, int) or not 1 <= self.mu <= 65535:
            raise UnsupportedError(f"mu must be an integer in 1..65535, got {self.mu!r}")
        if (not isinstance(self.min_band, int) or isinstance(self.min_band, bool)
                or not 0 <= self.min_band <= MAX_MIN_BAND):
            raise UnsupportedError(f"min_band must be an integer in 0..{MAX_MIN_BAND}, "
                                   f"got {self.min_band!r}")
        if self.min_band and self.version < MIN_BAND_VERSION:
            raise UnsupportedError(f"min_band needs format version {MIN_BAND_VERSION} or later "
                                   f"(this config is version {self.version})")

    @property
    def quantizer_code(self) -> int:
        """The 2-bit ``quantizer`` field, also the code the quantize kernels take."""
        return QUANTIZERS.index(self.quantizer)

    @property
    def long_band_width(self) -> int:
        """The least width in bins of a long transform's scalefactor band, ``4 << min_band``
        (FORMAT.md §5.1; a short transform's bands are at least 4 bins wide, always)."""
        return MIN_BAND_WIDTH << self.min_band

    @property
    def short_hop(self) -> int:
        return self.hop // SHORT_BLOCKS

    @property
    def delay(self) -> int:
        """Leading decoder output samples that precede the first input sample (see FORMAT.md)."""
        return self.hop - (self.hop - self.overlap) // 2

    @property
    def frames_per_second(self) -> float:
        return self.samplerate / self.hop


def stream_config_for(samplerate, channels, *, quantizer=DEFAULT_QUANTIZER, mu=DEFAULT_MU,
                      low_delay=False,
                      window_shape="sine") -> StreamConfig:
    """The :class:`StreamConfig` the encoder uses for these user-facing choices."""
    rate = _check_rate(samplerate)
    hop, overlap = default_hop(rate, low_delay)
    return StreamConfig(samplerate=rate, channels=_check_channels(channels), hop=hop,
                        overlap=overlap, short_blocks=not low_delay, window_shape=window_shape,
                        quantizer=quantizer, mu=mu)


@dataclass(frozen=True)
class EncoderSettings:
    """Encoder-only choices: rate control mode and target (made by
    :func:`pacodec.options.resolve`, which applies the defaults and the rules for conflicts).

    ``mode`` is ``"cbr"`` (constant bitrate with a small bit reservoir, padded when the signal needs
    fewer bits), ``"abr"`` (average bitrate, large reservoir) or ``"vbr"`` (constant perceptual
    distance; ``quality`` 0..10 maps onto a distance).  ``bitrate`` is in kbit/s for all channels.
    """

    mode: str
    bitrate: float | None = None
    distance: float | None = None

    def __post_init__(self):
        if self.mode not in ("cbr", "abr", "vbr"):
            raise UnsupportedError(f"unknown rate control mode {self.mode!r}")
        if self.mode in ("cbr", "abr"):
            if self.bitrate is None or not (isinstance(self.bitrate, (int, float))
                                            and math.isfinite(self.bitrate)):
                raise UnsupportedError("a bitrate in kbit/s is needed for cbr/abr")
            if not 6 <= self.bitrate <= 2048:
                raise UnsupportedError(f"bitrate {self.bitrate:g} kbit/s is outside 6..2048")
        else:
            if self.distance is None or not (math.isfinite(self.distance) and 0.05 <= self.distance <= 50):
                raise UnsupportedError("distance must be a number in 0.05..50")

    @staticmethod
    def quality_to_distance(quality: float) -> float:
        """Map VBR quality 0..10 (10 best) to a perceptual distance (1.0 = noise at threshold)."""
        if not (isinstance(quality, (int, float)) and 0 <= quality <= 10):
            raise UnsupportedError(f"quality must be in 0..10, got {quality!r}")
        # q=10 -> 0.35, q=5 -> 2.0, q=0 -> 11: a geometric scale, ~1.5 dB per step.
        return float(11.0 * (0.35 / 11.0) ** (quality / 10.0))
