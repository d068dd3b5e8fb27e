"""Coding options -> encoder settings: the one resolver that every front-end uses.

The command line (``pacodec encode``, ``pacodec batch``), the Python API (:func:`pacodec.encode`,
:func:`pacodec.write`, :class:`pacodec.Encoder`, ``PacFile(..., "w")``) and the GStreamer encoder
(``pacodecenc``) each translate what the user gave into the keywords of :func:`resolve` and use
what it returns, so the same options mean the same encoding everywhere.

The rules (README "Quickstart: your own files"; ``pacodec encode --help``):

* **One rate option.**  The rate is set by at most one of ``bitrate`` (CBR, kbit/s for all
  channels), ``abr`` (average bitrate, kbit/s), ``quality`` (VBR, 0..10, 10 best) or ``distance``
  (VBR at a perceptual distance, 1.0 = noise at the masking threshold).
* **Nothing given: VBR** at :data:`~pacodec.config.DEFAULT_QUALITY` (about 121 kbit/s on 44.1 kHz
  stereo music), as opusenc and oggenc do.  The streaming commands always pass a bitrate (their
  ``-b``, default 128): live links stay CBR.
* **``mode``** (``"cbr"``, ``"abr"``, ``"vbr"``: the Python API's name for it) chooses the rate
  control without a target: ``"cbr"``/``"abr"`` at ``bitrate`` (default
  :data:`~pacodec.config.DEFAULT_BITRATE`), ``"vbr"`` at ``quality`` or ``distance`` (default
  quality).  ``mode="abr", bitrate=B`` is the same as ``abr=B``.
* **``mu``** is the mu-law quantizer's parameter: given without ``quantizer`` it selects
  ``quantizer="mulaw"``.
* **The input's limits** (once its sample rate and channel count are known: ``resolve(...,
  samplerate=, channels=)``).  A CBR/ABR rate above :data:`PCM_CAP` of 16-bit PCM's rate is
  coded at that cap, so the stream stays smaller than PCM (:attr:`CodingOptions.note` says so,
  and each front-end shows it: a warning line, a ``UserWarning``, an element warning, a
  manifest field); a rate below the lowest that codes audio (``minimum_bitrate``: frame
  headers and side information alone take it) is an error.  Rates are checked so only at the
  sample rates pacodec codes; other inputs are refused by the encoder itself.
* **Conflicts are errors, never silent overrides.**  Two options that cannot both take effect
  (two rate options, a ``mode`` that disagrees with the rate option, ``mu`` with another
  quantizer) raise :class:`~pacodec.errors.UnsupportedError` naming both, with the same text in
  every front-end (the options it can name -- bitrate, abr, quality, distance, mode, mu,
  quantizer -- are spelled so in the CLI's long options, the Python keywords and the GStreamer
  properties)::

      conflicting options: quality and distance (give one rate option: bitrate, abr, quality or distance)

This module is light (standard library only): the CLI imports it for ``--help``.  The lowest
rate that codes audio is measured with the encoder, which imports this module, so
:func:`resolve` takes that measurement as a function (``minimum_bitrate``);
:func:`pacodec.ratelimit.coding_options` is :func:`resolve` with it, what the front-ends call.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .config import (DEFAULT_BITRATE, DEFAULT_MU, DEFAULT_QUALITY, DEFAULT_QUANTIZER,
                     MAX_CHANNELS, QUANTIZERS, SUPPORTED_RATES, WINDOW_SHAPES, EncoderSettings,
                     stream_config_for)
from .errors import UnsupportedError

__all__ = ["CodingOptions", "resolve", "RATE_OPTIONS", "PCM_CAP", "pcm_kbps", "QUALITY_KBPS", "quality_for_kbps", "add_arguments",
           "from_args", "args_options", "rate_given", "rate_help", "LOW_DELAY_HELP"]

#: The rate options, in the order error messages name them.
RATE_OPTIONS = ("bitrate", "abr", "quality", "distance")
_MODES = ("cbr", "abr", "vbr")
_RATE_HINT = "give one rate option: bitrate, abr, quality or distance"
#: a CBR/ABR rate above this fraction of 16-bit PCM's rate is coded at it (the stream, headers
#: included, then stays below PCM)
PCM_CAP = 0.95
#: one description of low-delay mode for every command (README "How it works")
LOW_DELAY_HELP = ("low-delay mode: frames a quarter of the normal length (256 samples at "
                  "32-48 kHz) with a half-overlap window, 8 ms algorithmic delay at 48 kHz")


def conflict(a: str, b: str, why: str) -> UnsupportedError:
    """The one error of two options that cannot both take effect."""
    return UnsupportedError(f"conflicting options: {a} and {b} ({why})")


@dataclass(frozen=True)
class CodingOptions:
    """The resolved coding options: what the encoder is given, whatever the front-end.

    ``mode`` is ``"cbr"``, ``"abr"`` or ``"vbr"``; ``bitrate`` (kbit/s) is set for CBR/ABR;
    ``distance`` for VBR, with ``quality`` as well when the user gave a quality."""

    mode: str
    bitrate: float | None
    quality: float | None
    distance: float | None
    quantizer: str
    mu: int
    window_shape: str
    low_delay: bool
    #: the CBR/ABR rate asked for, when the input's limits changed it (capped at PCM); not part
    #: of what the options mean to the encoder, so two options differing only here are equal
    asked_bitrate: float | None = field(default=None, compare=False)
    #: what the input's limits changed, for the front-end to tell its user (None: nothing)
    note: str | None = field(default=None, compare=False)

    def for_input(self, samplerate, channels, minimum_bitrate=None) -> "CodingOptions":
        """These options checked against an input of ``samplerate`` Hz and ``channels``
        channels (the module's rule "the input's limits"): a CBR/ABR rate capped at
        :data:`PCM_CAP` of 16-bit PCM's rate (with a :attr:`note`), and refused
        (:class:`~pacodec.errors.UnsupportedError`) below ``minimum_bitrate(samplerate,
        channels, low_delay=...)`` kbit/s when that function is given."""
        samplerate, channels = _plain(samplerate), _plain(channels)
        if (self.mode == "vbr" or samplerate not in SUPPORTED_RATES
                or not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS):
            return self                  # the encoder refuses such an input with its own error
        out = self
        rate = self.bitrate
        pcm = pcm_kbps(samplerate, channels)
        if rate > PCM_CAP * pcm:
            # capped a little below PCM: frame headers come on top of the rate coded
            cap = round(PCM_CAP * pcm, 1)
            out = replace(self, bitrate=cap, asked_bitrate=rate, note=(
                f"{rate:g} kbit/s is {'more than' if rate > pcm else 'close to'} 16-bit PCM at "
                f"{samplerate} Hz x {channels} ch ({pcm:g} kbit/s); coding at {cap:g} kbit/s "
                f"so that the stream stays smaller than PCM"))
            rate = cap
        if minimum_bitrate is not None:
            low = minimum_bitrate(samplerate, channels, low_delay=self.low_delay)
            if rate < low:
                raise UnsupportedError(
                    f"{rate:g} kbit/s is too low for {samplerate} Hz x {channels} ch: frame "
                    f"headers and side information alone take most of it, and the audio would "
                    f"decode as silence; use at least {low:g} kbit/s (or fewer channels, or a "
                    f"lower sample rate)")
        return out

    def settings(self) -> EncoderSettings:
        """The rate control's :class:`~pacodec.config.EncoderSettings`."""
        if self.mode == "vbr":
            return EncoderSettings(mode="vbr", bitrate=None, distance=self.distance)
        return EncoderSettings(mode=self.mode, bitrate=self.bitrate)

    def stream_config(self, samplerate, channels):
        """The :class:`~pacodec.config.StreamConfig` for a stream of this rate and channels."""
        return stream_config_for(samplerate, channels, quantizer=self.quantizer, mu=self.mu,
                                 low_delay=self.low_delay, window_shape=self.window_shape)

    def encoder_kwargs(self) -> dict:
        """Keywords of :class:`pacodec.Encoder` that resolve to exactly these options."""
        kw = dict(quantizer=self.quantizer, window_shape=self.window_shape,
                  low_delay=self.low_delay)
        if self.quantizer == "mulaw":              # elsewhere mu is the default, and not an option
            kw["mu"] = self.mu
        kw.update(self.rate_option())
        return kw

    def rate_option(self) -> dict:
        """The one rate option that gives this rate control: ``{"quality": 7.0}``..."""
        if self.mode == "vbr":
            return ({"quality": self.quality} if self.quality is not None
                    else {"distance": self.distance})
        return {"bitrate" if self.mode == "cbr" else "abr": self.bitrate}

    def describe(self) -> str:
        """``"CBR 128 kbit/s"``, ``"ABR 96 kbit/s"``, ``"VBR quality 6"``, ``"VBR distance 1"``."""
        if self.mode == "vbr":
            return (f"VBR quality {self.quality:g}" if self.quality is not None
                    else f"VBR distance {self.distance:g}")
        return f"{self.mode.upper()} {self.bitrate:g} kbit/s"


def pcm_kbps(samplerate, channels) -> float:
    """16-bit PCM's rate in kbit/s."""
    return samplerate * channels * 16 / 1000


def _plain(v):
    """numpy scalars as the Python numbers they are (``np.float32(96)`` is a bitrate)."""
    item = getattr(v, "item", None)
    if item is not None and getattr(v, "shape", None) == ():
        return item()
    return v


def _number(name, v) -> float:
    v = _plain(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UnsupportedError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def resolve(*, bitrate=None, abr=None, quality=None, distance=None, mode=None, quantizer=None,
            mu=None, window_shape=None, low_delay=False, samplerate=None, channels=None,
            minimum_bitrate=None) -> CodingOptions:
    """Resolve the user's coding options (``None`` = not given) by the rules of this module;
    with ``samplerate`` and ``channels``, checked against that input too
    (:meth:`CodingOptions.for_input`, given ``minimum_bitrate``).

    Raises :class:`~pacodec.errors.UnsupportedError` on a conflict or a value out of range."""
    if mode is not None and mode not in _MODES:
        raise UnsupportedError(f"unknown rate control mode {mode!r}; choose one of "
                               f"{', '.join(_MODES)}")
    if mode == "abr" and bitrate is not None and abr is None:
        bitrate, abr = None, bitrate              # mode="abr", bitrate=B is abr=B
    given = dict(zip(RATE_OPTIONS, (bitrate, abr, quality, distance)))
    names = [k for k, v in given.items() if v is not None]
    if len(names) > 1:
        raise conflict(", ".join(names[:-1]), names[-1], _RATE_HINT)
    if mode is not None and names:
        agrees = {"cbr": ("bitrate",), "abr": ("abr",), "vbr": ("quality", "distance")}[mode]
        if names[0] not in agrees:
            raise conflict(f"mode={mode}", names[0],
                           f"mode {mode} takes {' or '.join(agrees)}")
    if not names:                                  # the defaults: see the module's rules
        names = [{None: "quality", "vbr": "quality", "cbr": "bitrate", "abr": "abr"}[mode]]
        given[names[0]] = DEFAULT_QUALITY if names[0] == "quality" else DEFAULT_BITRATE
    name = names[0]
    value = _number(name, given[name])
    if name == "quality":
        out = dict(mode="vbr", bitrate=None, quality=value,
                   distance=EncoderSettings.quality_to_distance(value))
    elif name == "distance":
        out = dict(mode="vbr", bitrate=None, quality=None, distance=value)
    else:
        out = dict(mode="cbr" if name == "bitrate" else "abr", bitrate=value, quality=None,
                   distance=None)
    if mu is not None:
        mu = _plain(mu)
        if quantizer is None:
            quantizer = "mulaw"                    # mu alone means mu-law
        elif quantizer != "mulaw":
            raise conflict("mu", f"quantizer={quantizer}", "mu is the mulaw quantizer's parameter")
    quantizer = DEFAULT_QUANTIZER if quantizer is None else quantizer
    if quantizer not in QUANTIZERS:
        raise UnsupportedError(f"unknown quantizer {quantizer!r}; choose one of "
                               f"{', '.join(QUANTIZERS)}")
    mu = DEFAULT_MU if mu is None else mu
    if isinstance(mu, bool) or not isinstance(mu, int) or not 1 <= mu <= 65535:
        raise UnsupportedError(f"mu must be an integer in 1..65535, got {mu!r}")
    window_shape = "sine" if window_shape is None else window_shape
    if window_shape not in WINDOW_SHAPES:
        raise UnsupportedError(f"window shape must be one of {', '.join(WINDOW_SHAPES)}")
    opts = CodingOptions(quantizer=quantizer, mu=mu, window_shape=window_shape,
                         low_delay=bool(_plain(low_delay)), **out)
    opts.settings()                                # range checks of bitrate and distance
    if samplerate is not None and channels is not None:
        opts = opts.for_input(samplerate, channels, minimum_bitrate)
    return opts


# ------------------------------------------------------------------------- command line
#: Mean bitrate (kbit/s) of ``pacodec encode -q Q`` on 44.1 kHz stereo music: 10 whole clips of
#: the corpus (README "Quickstart: your own files" has the clips and the command); format 7.
QUALITY_KBPS = ((0, 24), (1, 36), (2, 51), (3, 54), (4, 58), (5, 70), (6, 94), (7, 121),
                (8, 150), (9, 180), (10, 210))


def quality_for_kbps(kbps: float) -> float:
    """The VBR quality whose mean rate on 44.1 kHz stereo music is ``kbps`` by QUALITY_KBPS
    (linear in log-rate between its points, clamped to 0..10), e.g. for comparing pacodec's
    default mode with other codecs' at a nominal rate (tools/compare.py)."""
    pts = [(q, k) for q, k in QUALITY_KBPS]
    if kbps <= pts[0][1]:
        return float(pts[0][0])
    for (q0, k0), (q1, k1) in zip(pts, pts[1:]):
        if kbps <= k1:
            return q0 + (q1 - q0) * (math.log(kbps) - math.log(k0)) / (math.log(k1) - math.log(k0))
    return float(pts[-1][0])


def rate_help() -> str:
    """The rate options' rules and the quality scale, for ``pacodec encode --help``."""
    qs = "".join(f"{q:>5}" for q, _ in QUALITY_KBPS)
    kb = "".join(f"{k:>5}" for _, k in QUALITY_KBPS)
    return (
        "rate options (at most one; two are an error):\n"
        f"  (none)      VBR at quality {DEFAULT_QUALITY:g}: about {dict(QUALITY_KBPS)[round(DEFAULT_QUALITY)]} kbit/s on 44.1 kHz stereo music\n"
        "  -q Q        VBR quality 0..10 (10 best; fractions allowed).  Mean bitrate on\n"
        "              44.1 kHz stereo music (10 clips; one clip's is 0.5-1.3x the mean):\n"
        f"                -q {qs}\n"
        f"            kbit/s {kb}\n"
        "  -d D        VBR at perceptual distance D (1.0 = noise at the masking threshold)\n"
        "  -b KBPS     CBR: constant bitrate (what streaming needs)\n"
        "  --abr KBPS  average bitrate over a few seconds\n")
def add_arguments(p, *, quality_help=None):
    """The coding options of ``pacodec encode`` and ``pacodec batch`` (one definition).

    Conflicts are left to :func:`resolve`, so the command line reports them with the same text
    as the other front-ends (one line, exit 1)."""
    p.add_argument("-b", "--bitrate", type=float, metavar="KBPS",
                   help="CBR bitrate in kbit/s, 6..2048 (capped at the 16-bit PCM rate)")
    p.add_argument("--abr", type=float, metavar="KBPS", help="average bitrate in kbit/s")
    p.add_argument("-q", "--quality", type=float, metavar="Q",
                   help=quality_help or f"VBR quality 0..10 (10 best; default {DEFAULT_QUALITY:g} "
                                        f"when no rate option is given); not --quiet")
    p.add_argument("-d", "--distance", type=float, metavar="D",
                   help="VBR perceptual distance 0.05..50 (1.0 = noise at the masking threshold)")
    p.add_argument("--quantizer", choices=list(QUANTIZERS), default=None,
                   help="quantizer (default uniform: best mean ViSQOL on the corpus, see README; "
                        "--mu alone implies mulaw)")
    p.add_argument("--mu", type=int, default=None, metavar="MU",
                   help=f"mu-law parameter 1..65535 (default {DEFAULT_MU}); implies --quantizer mulaw")
    p.add_argument("--window", choices=list(WINDOW_SHAPES), default=None,
                   help="window slope shape (default sine)")
    p.add_argument("--low-delay", action="store_true", help=LOW_DELAY_HELP)


def rate_given(args) -> bool:
    """Whether the command line gave a rate option."""
    return any(getattr(args, k) is not None for k in RATE_OPTIONS)


def from_args(args) -> CodingOptions:
    """:func:`resolve` the options :func:`add_arguments` parsed."""
    return resolve(**args_options(args))


def args_options(args) -> dict:
    """The keywords of :func:`resolve` that the options :func:`add_arguments` parsed give."""
    return dict(bitrate=args.bitrate, abr=args.abr, quality=args.quality,
                distance=args.distance, quantizer=args.quantizer, mu=args.mu,
                window_shape=args.window, low_delay=args.low_delay)
