"""Tags between audio files (through libsndfile) and pacodec streams (FORMAT.md §3.3).

libsndfile exposes a fixed set of strings (``soundfile``'s ``title``, ``artist``, ...): it reads
them from FLAC and Ogg Vorbis comments, WAV ``LIST/INFO`` chunks and AIFF, and writes them to the
same formats.  A stream's tags use the Vorbis comment names (``TITLE``, ``ARTIST``, ...); any
other key is kept in the stream but cannot be written to a file by libsndfile.
"""
from __future__ import annotations

__all__ = ["SOUNDFILE_KEYS", "read_file_tags", "write_file_tags", "parse_tag_option"]

# soundfile attribute -> Vorbis comment name.  'software' (libsndfile's ENCODER) describes the
# input's encoder, not the music: it is not copied.
SOUNDFILE_KEYS = {
    "title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "tracknumber": "TRACKNUMBER",
    "date": "DATE", "genre": "GENRE", "comment": "COMMENT", "copyright": "COPYRIGHT",
    "license": "LICENSE",
}


def read_file_tags(snd) -> dict:
    """``{KEY: value}`` of an open ``soundfile.SoundFile`` (empty strings left out)."""
    out = {}
    for attr, key in SOUNDFILE_KEYS.items():
        try:
            value = getattr(snd, attr)
        except Exception:          # noqa: BLE001 -- a format without strings
            continue
        if value:
            out[key] = value
    return out


def write_file_tags(snd, tags: dict) -> list:
    """Set ``tags`` on a ``soundfile.SoundFile`` opened for writing, before any audio is written.
    Returns the keys libsndfile cannot store (other names, or a format without strings)."""
    inverse = {v: k for k, v in SOUNDFILE_KEYS.items()}
    left = []
    for key, value in tags.items():
        attr = inverse.get(key.upper())
        if attr is None:
            left.append(key)
            continue
        try:
            setattr(snd, attr, value)
        except Exception:          # noqa: BLE001 -- libsndfile: "does not support string data"
            left.append(key)
    return left


def parse_tag_option(text: str) -> tuple:
    """``KEY=VALUE`` of ``--tag`` -> ``(KEY, VALUE)``; ValueError with a one-line message."""
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise ValueError(f"--tag {text!r}: write KEY=VALUE (e.g. --tag TITLE='A song')")
    return key.strip(), value
