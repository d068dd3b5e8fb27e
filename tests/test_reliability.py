"""Reliability: damaged files in real life, bad encoder input, and never losing data.

Complements tests/test_format.py (decoder-level concealment, resync, truncation, strict mode) and
tests/test_cli.py (overwrite protection, not-audio input, 7 kHz, info offsets): these tests go
through the command line and the file API, check exactly what the user is told, and kill real
encoder processes.
"""
import errno
import hashlib
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from jackserver import restore_sigint
import soundfile as sf

import pacodec
import pacodec.pacfile
from pacodec import container as ct
from pacodec.cli import main
from pacodec.errors import EncoderInputError, FormatError, UnsupportedError

from conftest import snr_db


def run(*args):
    return main([str(a) for a in args])


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("pacodec: "), err
    return err


def leftovers(directory):
    return sorted(n for n in os.listdir(directory) if "pacodec-partial" in n)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def clip(piano):
    x, fs = piano
    return x[: 2 * fs], fs


@pytest.fixture(scope="module")
def pac(clip):
    x, fs = clip
    return pacodec.encode(x, fs, bitrate=96)


def frames_of(data):
    pos, out = ct.HEADER_SIZE, []
    while pos < len(data):
        fr = ct.parse_frame_at(data, pos)
        out.append((pos, fr))
        pos += fr.size
    return out


# ============================================================================ damage in real life
def test_cli_decode_conceals_a_crc_damaged_frame_and_strict_refuses(tmp_path, clip, pac, capsys):
    x, fs = clip
    pos, fr = frames_of(pac)[30]
    bad = bytearray(pac)
    bad[pos + 40] ^= 0x08
    p = tmp_path / "crc.pac"
    p.write_bytes(bytes(bad))
    assert run("decode", p, "-o", tmp_path / "crc.wav") == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith("pacodec: warning: ") for line in lines)
    assert f"frame at byte offset {pos}: frame CRC mismatch" in err
    assert "1 frame(s) missing" in err
    y, rate = sf.read(tmp_path / "crc.wav")
    assert rate == fs and y.shape == x.shape
    assert snr_db(x[35 * 1024:], y[35 * 1024:]) > 15     # aligned after the concealed frame

    assert run("decode", p, "-o", tmp_path / "strict.wav", "--strict") == 1
    err = one_line(capsys.readouterr().err)
    assert "CRC" in err and f"byte offset {pos}" in err
    assert not (tmp_path / "strict.wav").exists() and leftovers(tmp_path) == []


def test_cli_decode_of_a_truncated_file_keeps_complete_frames_and_warns_once(tmp_path, clip, pac,
                                                                             capsys):
    x, fs = clip
    p = tmp_path / "cut.pac"
    p.write_bytes(pac[: len(pac) // 2 + 11])
    assert run("decode", p, "-o", tmp_path / "cut.wav") == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert all(line.startswith("pacodec: warning: ") for line in lines), err   # no Python traceback
    assert sum("truncated" in line for line in lines) == 2     # the cut frame + missing end frame
    assert sum("end-of-stream" in line for line in lines) == 1
    info = sf.info(tmp_path / "cut.wav")
    assert info.samplerate == fs and info.channels == 2
    assert 0.4 * len(x) < info.frames < 0.6 * len(x)
    y, _ = sf.read(tmp_path / "cut.wav")
    assert snr_db(x[1024:len(y) - 2048], y[1024:-2048]) > 15


def test_streaming_read_resyncs_after_garbage_like_one_shot_decoding(tmp_path, clip, pac, rng):
    """Garbage bursts (with false sync words) across the reader's chunk boundaries."""
    x, fs = clip
    offs = frames_of(pac)
    data = bytearray()
    last = 0
    for k in (10, 25, 50):
        pos = offs[k][0]
        junk = bytearray(rng.integers(0, 256, 9000, dtype=np.uint8).tobytes())
        junk[100:104] = b"\xca\x5e\x3f\xff"       # a false sync claiming 16 KB
        data += pac[last:pos] + junk
        last = pos
    data += pac[last:]
    p = tmp_path / "g.pac"
    p.write_bytes(bytes(data))
    y, rate = pacodec.read(p)
    z, _ = pacodec.decode(bytes(data))
    assert rate == fs and y.shape == x.shape and np.array_equal(y, z)
    assert snr_db(x, y) > 15


def test_info_says_what_is_damaged_and_where(tmp_path, pac, capsys):
    offs = frames_of(pac)
    bad = bytearray(pac)
    pos, fr = offs[12]
    bad[pos + 30] ^= 0x01                                     # CRC damage in frame 12
    g_at = offs[40][0]
    bad[g_at:g_at] = b"\x00" * 500                            # 500 zero bytes before frame 40
    p = tmp_path / "d.pac"
    p.write_bytes(bytes(bad[:-30]))                           # and cut inside the last frames
    i = pacodec.info(p)
    assert i.problems[0] == (f"frame 12 at byte offset {pos}: frame CRC mismatch; {fr.size} bytes "
                             f"skipped, resynchronised at byte offset {offs[13][0]}")
    assert i.problems[1] == f"1 frame(s) missing before byte offset {offs[13][0]}"
    assert i.problems[2].startswith(f"frame 39 at byte offset {g_at + 0}: not a frame")
    assert f"500 bytes skipped, resynchronised at byte offset {g_at + 500}" in i.problems[2]
    assert i.problems[3].startswith("truncated frame")
    assert i.problems[-1] == "no end-of-stream frame (truncated file?)"
    assert run("info", p) == 1
    out = capsys.readouterr().out
    assert f"frame 12 at byte offset {pos}: frame CRC mismatch" in out


def test_info_lists_at_most_twenty_problems_on_screen(tmp_path, pac, capsys):
    bad = bytearray(pac)
    for pos, fr in frames_of(pac)[:-1:2]:                    # every other frame damaged
        bad[pos + 20] ^= 0x40
    p = tmp_path / "many.pac"
    p.write_bytes(bytes(bad))
    assert len(pacodec.info(p).problems) > 20
    assert run("info", p) == 1
    out = capsys.readouterr().out
    listed = out.split("  problems:\n")[1].splitlines()
    assert len(listed) == 21 and listed[-1].endswith("more (--json lists them all)")


# ============================================================================ bad encoder input
def write_wav(path, x, fs, subtype="FLOAT"):
    sf.write(path, x, fs, subtype=subtype)
    return path


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cli_rejects_non_finite_samples_in_one_line(tmp_path, capsys, bad):
    x = np.zeros((5000, 2), np.float32)
    x[4321, 1] = bad
    p = write_wav(tmp_path / "nan.wav", x, 44100)
    assert run("encode", p, "-o", tmp_path / "nan.pac") == 1
    err = one_line(capsys.readouterr().err)
    assert "NaN or infinite" in err and "frame 4321" in err
    assert not (tmp_path / "nan.pac").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("rate", [384000, 7000, 22000])
def test_unsupported_rates_are_one_line_errors_naming_the_supported_ones(tmp_path, capsys, rate):
    p = write_wav(tmp_path / "r.wav", np.zeros((1000, 1)), rate, "PCM_16")
    assert run("encode", p, "-o", tmp_path / "r.pac") == 1
    err = one_line(capsys.readouterr().err)
    assert str(rate) in err and "44100" in err and "resample" in err
    with pytest.raises(UnsupportedError):
        pacodec.Encoder(rate, 1)


def test_nine_channels_are_a_one_line_error(tmp_path, capsys):
    p = write_wav(tmp_path / "nine.wav", np.zeros((1000, 9)), 48000, "PCM_16")
    assert run("encode", p, "-o", tmp_path / "nine.pac") == 1
    err = one_line(capsys.readouterr().err)
    assert "channel count 9" in err and "1 to 8" in err
    for ch in (0, 9, 16):
        with pytest.raises(UnsupportedError, match="channel"):
            pacodec.Encoder(48000, ch)


def test_a_wav_header_claiming_zero_channels_is_a_one_line_error(tmp_path, capsys):
    le = int.to_bytes
    fmt = (b"fmt " + le(16, 4, "little") + le(1, 2, "little") + le(0, 2, "little")   # 0 channels
           + le(44100, 4, "little") + le(0, 4, "little") + le(0, 2, "little") + le(16, 2, "little"))
    body = b"WAVE" + fmt + b"data" + (8).to_bytes(4, "little") + bytes(8)
    p = tmp_path / "zero.wav"
    p.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    assert run("encode", p, "-o", tmp_path / "zero.pac") == 1
    assert "not a readable audio file" in one_line(capsys.readouterr().err)


def test_unreadable_inputs_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    afile = write_wav(tmp_path / "a.wav", np.zeros((100, 1)), 8000, "PCM_16")
    cases = [("encode", tmp_path / "adir", "is a directory"),
             ("encode", afile / "under.wav", "no such file"),       # a path under a file
             ("decode", tmp_path / "adir", "directory"),
             ("info", tmp_path / "adir", "directory"),
             ("decode", afile / "under.pac", "no such file")]
    for cmd, path, needle in cases:
        args = (cmd, path) if cmd == "info" else (cmd, path, "-o", tmp_path / "o.wav")
        assert run(*args) == 1
        err = one_line(capsys.readouterr().err)
        assert needle in err.lower(), (cmd, path, err)
    assert sorted(os.listdir(tmp_path)) == ["a.wav", "adir"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root reads files whatever their permissions; the directory and "
                           "path-under-a-file cases above cover unreadable input as root")
def test_permission_denied_is_a_one_line_error(tmp_path, capsys):
    p = write_wav(tmp_path / "secret.wav", np.zeros((100, 1)), 8000, "PCM_16")
    p.chmod(0)
    try:
        assert run("encode", p, "-o", tmp_path / "s.pac") == 1
        assert "Permission denied" in one_line(capsys.readouterr().err)
    finally:
        p.chmod(0o644)


@pytest.mark.parametrize("cmd", ["encode", "decode", "info"])
def test_permission_denied_message_even_as_root(tmp_path, monkeypatch, capsys, pac, cmd):
    """Root reads any file, so the open() is made to fail as it does for other users (EACCES)."""
    import pacodec._audioin
    import pacodec.cli
    p = tmp_path / ("secret.wav" if cmd == "encode" else "secret.pac")
    if cmd == "encode":
        write_wav(p, np.zeros((100, 1)), 8000, "PCM_16")
    else:
        p.write_bytes(pac)
    real_open = open

    def denying_open(file, *a, **k):
        if os.fspath(file) == str(p):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))
        return real_open(file, *a, **k)
    monkeypatch.setattr(pacodec.cli, "open", denying_open, raising=False)
    monkeypatch.setattr(pacodec._audioin, "open", denying_open, raising=False)
    monkeypatch.setattr(pacodec.pacfile, "open", denying_open, raising=False)
    args = (cmd, p) if cmd == "info" else (cmd, p, "-o", tmp_path / "out.wav")
    assert run(*args) == 1
    err = one_line(capsys.readouterr().err)
    assert str(p) in err and "Permission denied" in err
    assert not (tmp_path / "out.wav").exists()


def test_output_directory_problems_are_one_line_errors(tmp_path, capsys):
    src = write_wav(tmp_path / "a.wav", np.zeros((100, 1)), 8000, "PCM_16")
    (tmp_path / "outdir").mkdir()
    for out, needle in [(tmp_path / "nope" / "x.pac", "does not exist"),
                        (tmp_path / "outdir", "is a directory"),
                        (src / "x.pac", "does not exist")]:
        assert run("encode", src, "-o", out, "--force") == 1
        assert needle in one_line(capsys.readouterr().err)


def test_silence_dc_one_sample_and_empty_files_round_trip_through_the_cli(tmp_path):
    fs = 48000
    cases = {"silence": np.zeros((fs, 2)), "dc": np.full((fs, 1), 0.5),
             "one": np.array([[0.25, -0.25]]), "empty": np.zeros((0, 2))}
    for name, x in cases.items():
        src = write_wav(tmp_path / f"{name}.wav", x.astype(np.float32), fs)
        assert run("encode", src, "-o", tmp_path / f"{name}.pac", "--quiet") == 0
        assert run("decode", tmp_path / f"{name}.pac", "-o", tmp_path / f"{name}.out.wav",
                   "--float") == 0
        y, rate = sf.read(tmp_path / f"{name}.out.wav", always_2d=True)
        assert rate == fs and y.shape == x.shape, name
        assert pacodec.info(tmp_path / f"{name}.pac").problems == []
    y, _ = sf.read(tmp_path / "silence.out.wav")
    assert not y.any()                                          # digital silence stays exact
    # DC: within 0.25 dB at the default (VBR, noise near the masking threshold: 0.486), within
    # 1 % at CBR 128 kbit/s (the former default; one channel gets all 128 kbit/s)
    y, _ = sf.read(tmp_path / "dc.out.wav")
    assert abs(y[fs // 4: -fs // 4].mean() - 0.5) < 0.015
    assert run("encode", tmp_path / "dc.wav", "-o", tmp_path / "dc128.pac", "-b", 128,
               "--quiet") == 0
    assert run("decode", tmp_path / "dc128.pac", "-o", tmp_path / "dc128.wav", "--float") == 0
    y, _ = sf.read(tmp_path / "dc128.wav")
    assert abs(y[fs // 4: -fs // 4].mean() - 0.5) < 0.01


@pytest.mark.parametrize("amp", [10.0, 1000.0, 1e5])
def test_values_beyond_full_scale_are_kept(tmp_path, amp):
    """The format has no full scale: float input beyond +-1.0 is coded like any other (the steps
    2^((sf-100)/4) reach 2^38.75 and |q| <= 8191), and --float output keeps it."""
    fs = 44100
    t = np.arange(fs // 2) / fs
    x = (amp * np.sin(2 * np.pi * 440 * t) * np.hanning(len(t)))[:, None].astype(np.float32)
    src = write_wav(tmp_path / "loud.wav", x, fs)
    assert run("encode", src, "-o", tmp_path / "loud.pac", "--quiet") == 0
    assert run("decode", tmp_path / "loud.pac", "-o", tmp_path / "loud.out.wav", "--float") == 0
    y, _ = sf.read(tmp_path / "loud.out.wav", always_2d=True)
    assert y.shape == x.shape
    assert 0.8 < np.abs(y).max() / amp < 1.25 and snr_db(x, y) > 12


# ============================================================================ never lose data
@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    """60 s of stereo: long enough that an encoder is still running when it is killed."""
    d = tmp_path_factory.mktemp("long")
    fs = 44100
    rng = np.random.default_rng(5)
    t = np.arange(60 * fs) / fs
    x = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.05 * rng.standard_normal((len(t), 2))
    p = d / "long.wav"
    sf.write(p, x.astype(np.float32), fs, subtype="PCM_16")
    return p


def start_encode(src, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "pacodec", "encode", str(src), "-o", str(out),
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=restore_sigint)


def wait_for_partial(proc, directory, min_bytes=4096, timeout=120):
    """Wait until the encoder has written ``min_bytes`` to its partial output (so it is mid-way)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for n in leftovers(directory):
            try:
                if os.path.getsize(os.path.join(directory, n)) >= min_bytes:
                    return n
            except OSError:
                pass
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.005)
    raise AssertionError("the encoder never started writing")


@pytest.mark.parametrize("sig,code,word", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "terminated")])
def test_interrupted_encode_leaves_nothing_and_the_input_untouched(tmp_path, long_wav, sig, code,
                                                                   word):
    before = sha(long_wav)
    out = tmp_path / "o.pac"
    proc = start_encode(long_wav, out)
    wait_for_partial(proc, tmp_path)
    proc.send_signal(sig)
    assert proc.wait(timeout=60) == code
    assert one_line(proc.stderr.read()) == f"pacodec: {word}\n"
    assert os.listdir(tmp_path) == [] and sha(long_wav) == before


def test_interrupted_forced_encode_keeps_the_old_output(tmp_path, long_wav):
    out = tmp_path / "o.pac"
    out.write_bytes(b"the previous, complete output")
    proc = start_encode(long_wav, out, "--force")
    wait_for_partial(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert out.read_bytes() == b"the previous, complete output"
    assert leftovers(tmp_path) == []


def test_ctrl_c_inside_generated_code_still_exits_with_mains_status(tmp_path, pac):
    """A Ctrl-C that lands while a library runs exec/eval of a string (namedtuple, numba and
    numpy do while modules load: a receive stopped during start-up) is caught like any other;
    the process must end with main's status, not be killed by SIGINT (-2) at exit."""
    src = tmp_path / "in.pac"
    src.write_bytes(pac)
    # run with -m, as `python -m pacodec` is (with -c or a script CPython exits on SystemExit
    # before it looks at that mark)
    (tmp_path / "ctrl_c_in_exec.py").write_text(f"""
import sys
import pacodec.cli as cli
import pacodec.pacfile as pf
def info(*a, **k):
    exec("raise KeyboardInterrupt")
pf.info = info
sys.exit(cli.main(["info", {str(src)!r}]))
""")
    r = subprocess.run([sys.executable, "-m", "ctrl_c_in_exec"], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120, preexec_fn=restore_sigint)
    assert (r.returncode, r.stderr) == (130, "pacodec: interrupted\n")


def test_sigkill_leaves_only_a_marked_partial_that_the_next_run_removes(tmp_path, long_wav, clip):
    before = sha(long_wav)
    out = tmp_path / "o.pac"
    proc = start_encode(long_wav, out)
    partial = wait_for_partial(proc, tmp_path)
    proc.kill()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not out.exists() and leftovers(tmp_path) == [partial]
    assert partial.startswith(".o.pac.pacodec-partial-")       # hidden, named after its output
    assert sha(long_wav) == before
    # the next write into the directory (CLI or API) removes the dead process's partial
    x, fs = clip
    pacodec.write(tmp_path / "next.pac", x[:1000], fs)
    assert leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["next.pac"]


class FullDisk:
    """A file object whose writes fail with ENOSPC after ``room`` bytes (a full file system)."""

    def __init__(self, fh, room):
        self._fh, self._room = fh, room

    def write(self, data):
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)


@pytest.mark.parametrize("cmd,out", [("encode", "full.pac"), ("decode", "full.wav"),
                                     ("decode", "full.flac")])
def test_full_disk_is_a_one_line_error_and_leaves_nothing(tmp_path, clip, pac, monkeypatch,
                                                          capsys, cmd, out):
    x, fs = clip
    src = tmp_path / ("in.wav" if cmd == "encode" else "in.pac")
    if cmd == "encode":
        sf.write(src, x, fs, subtype="PCM_16")
    else:
        src.write_bytes(pac)
    real_open = open
    monkeypatch.setattr(pacodec.pacfile, "open",
                        lambda *a, **k: FullDisk(real_open(*a, **k), 3000), raising=False)
    assert run(cmd, src, "-o", tmp_path / out) == 1
    err = one_line(capsys.readouterr().err)
    assert err == f"pacodec: error: {tmp_path / out}: No space left on device\n"
    assert sorted(os.listdir(tmp_path)) == [src.name]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("cmd", ["encode", "decode"])
def test_stdout_on_a_full_device_is_a_one_line_error(tmp_path, clip, pac, cmd):
    x, fs = clip
    src = tmp_path / ("in.wav" if cmd == "encode" else "in.pac")
    if cmd == "encode":
        sf.write(src, x[:fs], fs, subtype="PCM_16")
    else:
        src.write_bytes(pac)
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "pacodec", cmd, str(src), "-o", "-"],
                           stdout=full, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 1
    assert one_line(r.stderr) == "pacodec: error: No space left on device\n"


def test_an_output_that_is_the_input_is_refused_even_with_force(tmp_path, clip, capsys):
    x, fs = clip
    src = tmp_path / "in.wav"
    sf.write(src, x[:fs], fs, subtype="PCM_16")
    before = sha(src)
    os.symlink(src, tmp_path / "alias.pac")
    assert run("encode", src, "-o", tmp_path / "alias.pac", "--force") == 1
    assert "refusing to overwrite the input" in one_line(capsys.readouterr().err)
    assert sha(src) == before
    (tmp_path / "exists.wav").write_bytes(b"keep me")
    pacodec.write(tmp_path / "a.pac", x[:fs], fs)
    assert run("decode", tmp_path / "a.pac", "-o", tmp_path / "exists.wav") == 1
    assert "--force" in one_line(capsys.readouterr().err)
    assert (tmp_path / "exists.wav").read_bytes() == b"keep me"


def test_api_errors_are_the_documented_types(tmp_path):
    with pytest.raises(EncoderInputError, match="NaN"):
        pacodec.encode(np.array([[0.0], [np.nan]]), 44100)
    with pytest.raises(EncoderInputError, match="numbers"):
        pacodec.encode(np.array([["a"], ["b"]]), 44100)
    with pytest.raises(FormatError):
        pacodec.decode(b"PACD" + bytes(30))
    with pytest.raises(pacodec.PacodecError, match="cannot open"):
        pacodec.read(tmp_path / "missing.pac")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # a clean stream warns about nothing
        pacodec.decode(pacodec.encode(np.zeros((100, 1)), 8000))


def test_a_stream_without_header_is_read_and_described_without_complaint(tmp_path, clip, pac):
    """A header is optional (a recorded live stream has none): PacFile (even strict) and info
    take the in-band config; a damaged magic shows up as 20 unusable bytes at offset 0."""
    x, fs = clip
    p = tmp_path / "live.pac"
    p.write_bytes(pac[ct.HEADER_SIZE:])
    y, rate = pacodec.read(p, strict=True)
    assert rate == fs and y.shape == x.shape
    i = pacodec.info(p)
    assert i.problems == [] and i.frames == len(x)
    bad = bytearray(pac)
    bad[1] ^= 0x01
    p.write_bytes(bytes(bad))
    assert pacodec.info(p).problems == [
        "frame 0 at byte offset 0: not a frame (no sync word); 20 bytes skipped, "
        "resynchronised at byte offset 20"]
