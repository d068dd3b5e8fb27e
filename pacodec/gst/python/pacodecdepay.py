"""gst-python loader entry for the pacodecdepay element (code: pacodec/gst/, collected by elements.py)."""
import os
import sys

try:
    import pacodec.gst.elements as _elements
except ImportError:
    # not on PYTHONPATH: use the package this file belongs to (numpy/numba must still import)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))))
    import pacodec.gst.elements as _elements

__gstelementfactory__ = _elements.FACTORIES["pacodecdepay"]
