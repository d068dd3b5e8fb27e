"""Bounded resources on crafted inputs (issue 13), checked by rate on scaled-down inputs: memory
that does not grow with the input, bytes read per byte of input, output per input byte -- never
by timing."""
import io
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest

import pacodec
from pacodec import container as ct
from pacodec.config import stream_config_for
from pacodec.decoder import CONCEAL_FREE, Decoder
from pacodec.errors import FormatError

BAD_CRC = b"\xca\x5e\x00\x00\x00\x12\x34"      # a sync word whose 0-byte frame fails its CRC
SILENT = bytes(16)       # an audio payload of zeros: long block, max_band 0 everywhere (+ padding)


def stream(cfg, middle=b"", *, frames=2, total=None, header=True):
    """Header, a config frame, ``middle``, ``frames - 1`` silent audio frames, end-of-stream."""
    out = [ct.pack_header(cfg, total)] if header else []
    out.append(ct.pack_config_frame(cfg, 0, SILENT))
    out.append(middle)
    out += [ct.pack_audio_frame(k, SILENT) for k in range(1, frames)]
    out.append(ct.pack_eos_frame(frames, cfg.hop * (frames - 1)))
    return b"".join(out)


def peak_bytes(fn):
    """Peak traced Python allocation while ``fn`` runs (numba is compiled before)."""
    fn()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def quiet(fn):
    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    return run


CFG2 = stream_config_for(48000, 2)


def test_runs_of_bad_crc_sync_candidates_keep_memory_and_the_error_list_bounded(tmp_path):
    peaks, infos = {}, {}
    for n in (20_000, 200_000):
        path = tmp_path / f"bad{n}.pac"
        path.write_bytes(stream(CFG2, BAD_CRC * n))
        dec = Decoder()
        with open(path, "rb") as fh:
            while chunk := fh.read(8192):
                dec.feed(chunk)
        dec.finish()
        assert dec.crc_errors == n and len(dec.errors) <= 2 * dec.errors.keep + 1
        peaks[n] = max(peak_bytes(quiet(lambda: pacodec.read(path))),
                       peak_bytes(quiet(lambda: pacodec.info(path))))
        infos[n] = pacodec.info(path)
    assert infos[200_000].codec_frames == infos[20_000].codec_frames == 2
    # ten times the input (1.3 MB more), the same memory: nothing is kept per candidate
    assert peaks[200_000] < peaks[20_000] + 64 * 1024, peaks


def test_the_error_list_keeps_the_first_and_last_problems_and_the_count(tmp_path):
    n = 3_000                  # 3000 damaged regions, each between two good frames
    middle = b"".join(BAD_CRC + ct.pack_audio_frame(k, SILENT) for k in range(1, n))
    dec = Decoder()
    head = ct.pack_header(CFG2, None) + ct.pack_config_frame(CFG2, 0, SILENT)
    data = head + middle + ct.pack_eos_frame(n, n * CFG2.hop)
    for i in range(0, len(data), 8192):
        dec.feed(data[i:i + 8192])
    dec.finish()
    assert dec.crc_errors == n - 1 and dec.errors.count == n - 1
    assert len(dec.errors) == 2 * dec.errors.keep + 1
    assert f"byte offset {len(head)}:" in dec.errors[0] and "CRC" in dec.errors[0]
    assert f"{n - 1 - 2 * dec.errors.keep} more problem(s) not listed" in dec.errors[dec.errors.keep]
    info = pacodec.info(io.BytesIO(data))
    assert len(info.problems) <= 2 * dec.errors.keep + 2 and info.codec_frames == n


def test_concealment_expansion_is_read_in_bounded_blocks(tmp_path):
    """15-byte silent 8-channel frames whose sequence numbers step by 9: each conceals up to
    CONCEAL_FREE frames.  Reading block by block holds one block plus one gap, whatever the
    file's length; the output per frame is bounded by (1 + CONCEAL_FREE) hops."""
    cfg = stream_config_for(96000, 8)
    frame_bytes = len(ct.pack_audio_frame(0, bytes(8)))
    assert frame_bytes == 15
    peaks = {}
    for n in (30, 150):
        frames = [ct.pack_config_frame(cfg, 0, bytes(8))]
        frames += [ct.pack_audio_frame(9 * k, bytes(8)) for k in range(1, n)]
        path = tmp_path / f"amp{n}.pac"
        path.write_bytes(ct.pack_header(cfg, None) + b"".join(frames))

        def read_blocks():
            got = 0
            with pacodec.PacFile(path) as f:
                for b in f.blocks(4096):
                    assert len(b) <= 4096
                    got += len(b)
            return got

        total = quiet(read_blocks)()
        assert 8 * (n - 2) * cfg.hop <= total <= (1 + CONCEAL_FREE) * n * cfg.hop
        peaks[n] = peak_bytes(quiet(read_blocks))
    # five times the frames (and ~70 MB more audio), about the same peak: one 4096-sample block
    # and one gap of CONCEAL_FREE hops (8 x 2048 x 8 ch float32 = 0.5 MB each)
    assert peaks[150] < peaks[30] + 2 * 1024 * 1024, peaks


def test_input_that_never_syncs_is_refused_after_the_stated_bound():
    with pytest.raises(FormatError, match="bad magic"):
        pacodec.info("/dev/zero")
    with pytest.raises(FormatError):
        pacodec.read("/dev/zero")
    # a valid header, then endless zeros: no frame in MAX_SYNC_SEARCH bytes
    dec = Decoder()
    dec.feed(ct.pack_header(CFG2, None))
    zeros = bytes(1 << 20)
    with pytest.raises(FormatError, match="no pacodec frame"):
        for _ in range((ct.MAX_SYNC_SEARCH >> 20) + 2):
            dec.feed(zeros)


@pytest.mark.parametrize("command", ["info", "decode"])
def test_cli_on_dev_zero_ends_with_a_one_line_error(tmp_path, command):
    args = [sys.executable, "-m", "pacodec", command, "/dev/zero"]
    if command == "decode":
        args += ["-o", str(tmp_path / "z.wav")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "z.wav").exists()


class CountingFile(io.FileIO):
    """A real file that counts the bytes read from it."""
    nread = 0

    def readinto(self, b):
        n = super().readinto(b)
        self.nread += n or 0
        return n

    def read(self, size=-1):
        data = super().read(size)
        self.nread += len(data)
        return data


def test_seeking_past_a_long_damaged_run_reads_the_file_a_bounded_number_of_times(tmp_path):
    """A config frame, a long run of false sync words, a config frame far ahead: every bisection
    probe used to scan to the end of the file (reads grew with log(size), each byte of the run
    costing a CRC); now each probe stops at the bisection's upper bound."""
    ratios = {}
    for n in (20_000, 160_000):
        data = (ct.pack_header(CFG2, None) + ct.pack_config_frame(CFG2, 0, SILENT)
                + BAD_CRC * n + ct.pack_config_frame(CFG2, 1000, SILENT))
        path = tmp_path / f"seek{n}.pac"
        path.write_bytes(data)
        fh = CountingFile(path, "rb")
        with pacodec.PacFile(fh) as f:
            start = fh.nread
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f.seek(500 * CFG2.hop)
                f.read(10)
            ratios[n] = (fh.nread - start) / len(data)
        fh.close()
    assert max(ratios.values()) < 4.5, ratios


def test_concatenated_streams_warn_that_only_the_first_is_decoded(tmp_path):
    one = stream(CFG2, frames=3)
    path = tmp_path / "cat.pac"
    path.write_bytes(one + one)
    with pytest.warns(RuntimeWarning, match="only the first is decoded"):
        y, _ = pacodec.read(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z, _ = pacodec.read(tmp_path.joinpath("one.pac").write_bytes(one) and tmp_path / "one.pac")
    assert y.shape == z.shape
    assert any("after the end-of-stream frame" in p for p in pacodec.info(path).problems)


def test_a_header_config_contradicting_the_in_band_one_warns_and_the_in_band_one_wins(tmp_path):
    cfg8 = stream_config_for(48000, 8)
    data = ct.pack_header(cfg8, None) + stream(CFG2, frames=4, header=False)
    path = tmp_path / "contra.pac"
    path.write_bytes(data)
    with pytest.warns(RuntimeWarning, match="contradicts the in-band"):
        y, fs = pacodec.read(path)
    assert y.shape == (3 * CFG2.hop, 2) and fs == 48000
    with pytest.warns(RuntimeWarning, match="contradicts the in-band"):
        y2, _ = pacodec.decode(data)
    assert y2.shape == y.shape
    with pytest.raises(FormatError):
        pacodec.decode(data, strict=True)


def test_pacfile_takes_its_config_from_the_decoder_when_header_and_in_band_config_disagree(tmp_path):
    """Header 2 ch, frames decoded under it, then a 1-ch config frame (a splice): the decoder
    rejects that frame as damaged (FORMAT.md §3.1: the config in use stays), and PacFile reports
    the decoder's config.  It reported the first in-band one (1 ch) and read() gave 2 channels.
    Before any audio, the in-band config wins in both (the other test above)."""
    cfg1 = stream_config_for(48000, 1)
    data = (ct.pack_header(CFG2, None)
            + b"".join(ct.pack_audio_frame(k, SILENT) for k in range(3))
            + stream(cfg1, frames=3, header=False))
    path = tmp_path / "splice.pac"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y, _ = pacodec.decode(data)
        assert y.shape[1] == 2
        with pacodec.PacFile(path) as f:
            assert (f.channels, f.samplerate) == (2, 48000)
            z = f.read()
        assert np.array_equal(z, y)
    cfg8 = stream_config_for(48000, 8)
    path.write_bytes(ct.pack_header(cfg8, None) + stream(CFG2, frames=4, header=False))
    with pytest.warns(RuntimeWarning, match="contradicts the in-band"):
        with pacodec.PacFile(path) as f:
            assert f.channels == 2 and f.read().shape == (3 * CFG2.hop, 2)


@pytest.mark.parametrize("cut", ["header", "config", "mid-frame"])
def test_a_stream_from_a_fifo_decodes_with_or_without_its_header(tmp_path, cut):
    """Unseekable input: the first in-band config is found by reading ahead (bounded), and a
    stream that starts inside a frame waits for a sync word instead of being refused."""
    import os
    import threading
    x = np.random.default_rng(3).standard_normal((3 * 48000, 2)) * 0.1
    data = pacodec.encode(x, 48000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full, _ = pacodec.decode(data)
        starts = [off for off, fr in ct.scan_frames(io.BytesIO(data), ct.HEADER_SIZE)
                  if fr.ftype == ct.FRAME_CONFIG]
        start = {"header": 0, "config": starts[1], "mid-frame": starts[1] - 5}[cut]
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        writer = threading.Thread(target=lambda: fifo.write_bytes(data[start:]))
        writer.start()
        try:
            with pacodec.PacFile(fifo) as f:
                y = f.read()
        finally:
            writer.join(timeout=60)
    if cut == "header":
        np.testing.assert_array_equal(y, full)
    else:
        assert 0 < len(y) < len(full)
        assert np.isfinite(y).all()
