"""What the command-line front-ends share (``pacodec`` itself, ``batch``, ``listen``): the error
that ends a command with one line, warnings, the progress line, output names and the coding
options for an input.  ``cli`` is on top and imports the others; they import this module (and
:mod:`pacodec._audioin`), never ``cli``.  Standard library only at import (``--help`` stays
light).
"""
from __future__ import annotations

import os
import sys

__all__ = ["CliError", "warn", "Progress", "seconds_progress", "output_name",
           "coding_options_for"]


class CliError(Exception):
    """A command's error: ``pacodec: error: <message>`` on one line, exit status 1."""


def warn(msg):
    """``pacodec: warning: <msg>`` on stderr."""
    print(f"pacodec: warning: {msg}", file=sys.stderr)


class Progress:
    """One progress line on stderr, rewritten in place: ``LABEL [######      ] TEXT``.

    ``show(fraction, text)`` draws it (nothing unless ``enabled``: the callers enable it on a
    terminal without ``--quiet``); ``update(done)`` draws ``done`` of ``total`` as a
    percentage; ``done()`` ends the line if one was drawn."""

    def __init__(self, label="", *, total=None, enabled=True, width=30):
        self.label, self.total, self.on, self.width = label, total, enabled, width
        self.shown = False

    def show(self, frac, text):
        if not self.on:
            return
        bar = "#" * int(self.width * frac)
        label = f"{self.label} " if self.label else ""
        sys.stderr.write(f"\r{label}[{bar:<{self.width}}] {text}")
        sys.stderr.flush()
        self.shown = True

    def update(self, done):
        if self.on:
            frac = min(1.0, done / self.total)
            self.show(frac, f"{100 * frac:5.1f}%")

    def done(self):
        if self.shown:
            sys.stderr.write("\n")
            self.shown = False


def seconds_progress(total_seconds, label, quiet=False) -> Progress:
    """The progress of one file (``update(seconds)``), shown only for inputs longer than 20 s
    on a terminal."""
    return Progress(label, total=total_seconds,
                    enabled=(not quiet and total_seconds is not None and total_seconds > 20
                             and sys.stderr.isatty()))


def output_name(path: str, suffix: str) -> str:
    """An output's name: ``path`` with its extension replaced by ``suffix`` (``a.wav`` ->
    ``a.pac``)."""
    root, _ = os.path.splitext(path)
    return root + suffix


def coding_options_for(args, samplerate, channels):
    """The coding options the command line gave (:func:`pacodec.options.add_arguments`) for an
    input of ``samplerate`` Hz and ``channels`` channels (:func:`pacodec.ratelimit.coding_options`:
    a rate capped at 16-bit PCM's is a warning, one too low an error)."""
    from .options import args_options
    from .ratelimit import coding_options
    opts = coding_options(samplerate, channels, **args_options(args))
    if opts.note:
        warn(opts.note)
    return opts
