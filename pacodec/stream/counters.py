"""The counters every streaming object keeps, declared once.

A class that counts events (packets received, lost, late; bytes sent; underruns ...) lists the
names in ``COUNTERS`` and inherits :class:`Counted`: :meth:`Counted.zero_counters` (called in
``__init__``) sets each to 0 and :meth:`Counted.counters` is a dict snapshot, the part of
``stats()`` that is plain counts.  The counters stay plain attributes (``jitter.lost``,
``transport.send_errors``): the one thread that owns a counter bumps it with ``+= 1``, any
thread may read it, and an audio callback pays no more than an attribute update.
"""

__all__ = ["Counted"]


class Counted:
    """Mixin: the named counters of ``COUNTERS`` as integer attributes."""

    #: the counter names, in the order :meth:`counters` lists them
    COUNTERS: tuple = ()

    def zero_counters(self):
        for name in self.COUNTERS:
            setattr(self, name, 0)

    def counters(self, *names) -> dict:
        """``{name: value}`` of ``names`` (default: every counter)."""
        return {name: getattr(self, name) for name in (names or self.COUNTERS)}
