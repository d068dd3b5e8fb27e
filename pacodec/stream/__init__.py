"""Real-time streaming: live monitoring, UDP send/receive, file playback.

Objects (importing this package never imports sounddevice/PortAudio; only opening an audio
stream does):

* :class:`LivePipeline` — microphone -> Encoder -> Decoder -> speakers;
* :class:`Sender` — microphone or file (paced in real time) -> Encoder -> UDP;
* :class:`Receiver` — UDP -> :class:`JitterBuffer` -> Decoder (with concealment) -> speakers
  or a WAV file;
* their options: :class:`SenderSettings`, :class:`ReceiverSettings` (checked once, when made;
  the pipelines also take the same names as keywords);
* :class:`FilePlayer` — a ``.pac`` file -> speakers, from any start time;
* building blocks: :class:`RingBuffer` (what audio callbacks touch), :class:`JitterBuffer`,
  :class:`UdpTransport`, :class:`LossyRelay` (a seeded lossy/reordering relay for tests).

Threading rules, shared by every pipeline:

1. The sounddevice callback only moves samples between preallocated :class:`RingBuffer`\\ s,
   updates integer counters and posts a token on a ``queue.SimpleQueue``.  It never allocates
   audio buffers, does I/O, runs the codec, blocks, or takes a lock the codec thread holds.
2. The codec runs in its own thread, woken by those tokens (with a timeout, so it also notices
   ``stop``).  Network I/O runs in the codec thread (sender) or its own thread (receiver).
3. Encoder/Decoder objects belong to that one thread.  ``stats()`` only reads counters and is
   safe from any thread; ``start``/``stop``/``run`` belong to the thread that created the object.
4. The codec is warmed up (a few frames encoded and decoded) before an audio stream opens.
5. While a pipeline with an audio stream runs, CPython's GIL switch interval is lowered to
   1 ms (process-wide; restored by ``stop``) so that the callback is not kept waiting.
"""
import importlib

_LAZY = {"JitterBuffer": "jitter", "Playout": "jitter", "LivePipeline": "live",
         "FilePlayer": "player", "Receiver": "receiver", "LossyRelay": "relay",
         "RingBuffer": "ringbuffer", "Sender": "sender", "UdpTransport": "transport",
         "parse_hostport": "transport", "ReceiverSettings": "settings",
         "SenderSettings": "settings"}


def __getattr__(name):
    """Load the pipeline classes on first use, so ``pacodec --help`` stays light."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'pacodec.stream' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = ["LivePipeline", "Sender", "Receiver", "SenderSettings", "ReceiverSettings",
           "FilePlayer", "JitterBuffer", "Playout",
           "RingBuffer", "UdpTransport", "LossyRelay", "parse_hostport", "list_devices"]


def list_devices():
    """sounddevice's device list (imports PortAudio)."""
    from ._audio import sounddevice
    return sounddevice().query_devices()
