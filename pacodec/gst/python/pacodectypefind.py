"""gst-python loader entry for the pacodec type finder (code: pacodec/gst/typefind.py).

It registers a type finder, not an element, so it has no ``__gstelementfactory__`` (the loader
then notes at debug level that the file defines no element, and carries on)."""
import os
import sys

from gi.repository import Gst

try:
    import pacodec.gst.typefind as _typefind
except ImportError:
    # not on PYTHONPATH: use the package this file belongs to
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))))
    import pacodec.gst.typefind as _typefind

# the loader sets Gst.__plugin__ when it started Python itself (gst-launch, gst-play, the plugin
# scanner); inside a Python application the type finder is registered without a plugin
_typefind.register(Gst, getattr(Gst, "__plugin__", None))
