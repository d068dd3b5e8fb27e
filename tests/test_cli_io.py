"""The command line's I/O: pipes stream both ways, WAV sizes stay true past 4 GiB (RF64), the
Unix conventions (SIGPIPE, no binary on a terminal), and the one-line errors of odd inputs.

Each test runs the real CLI in a subprocess on real files in ``tmp_path``."""
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import pacodec

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, **kw):
    kw.setdefault("capture_output", True)
    return subprocess.run([sys.executable, "-m", "pacodec", *map(str, args)], **kw)


def popen(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "pacodec", *map(str, args)], **kw)


def one_line(err):
    text = err.decode() if isinstance(err, bytes) else err
    assert text.count("\n") == 1 and "Traceback" not in text, text
    return text


@pytest.fixture(scope="module")
def clip():
    rng = np.random.default_rng(5)
    t = np.arange(3 * 16000) / 16000
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1)
    return x + 0.01 * rng.standard_normal(x.shape), 16000


@pytest.fixture
def pac(tmp_path, clip):
    x, fs = clip
    p = tmp_path / "a.pac"
    pacodec.write(p, x, fs, bitrate=64)
    return p


@pytest.fixture
def pac_unknown(tmp_path, clip):
    """The same audio as a stream whose header does not know the length (as from a pipe)."""
    x, fs = clip
    enc = pacodec.Encoder(fs, 2, bitrate=64)
    p = tmp_path / "u.pac"
    p.write_bytes(b"".join([enc.header(), *enc.encode(x), *enc.flush()]))
    return p


def riff_sizes(data: bytes):
    """(id, RIFF size, data size) of a WAV/RF64 file's header (ds64 sizes for RF64)."""
    if data[:4] == b"RF64":
        riff, size = struct.unpack("<QQ", data[20:36])
        return "RF64", riff, size
    pos = 12
    while True:
        cid, n = struct.unpack("<4sI", data[pos:pos + 8])
        if cid == b"data":
            return data[:4].decode(), struct.unpack("<I", data[4:8])[0], n
        pos += 8 + n + (n & 1)


# ------------------------------------------------------------------------------- pipes
def test_decode_to_stdout_is_a_wav_with_exact_sizes_when_the_length_is_known(tmp_path, pac,
                                                                             clip):
    x, fs = clip
    r = cli("decode", pac, "-o", "-", check=True)
    kind, riff, size = riff_sizes(r.stdout)
    assert kind == "RIFF" and riff == len(r.stdout) - 8 and size == len(x) * 2 * 2
    cli("decode", pac, "-o", tmp_path / "f.wav", check=True)
    assert (tmp_path / "f.wav").read_bytes() == r.stdout      # file and pipe: same bytes


def test_unknown_length_to_a_pipe_gets_the_streaming_header_and_reads_to_the_end(tmp_path,
                                                                                pac_unknown,
                                                                                clip):
    x, fs = clip
    r = cli("decode", "-", "-o", "-", stdin=open(pac_unknown, "rb"), check=True)
    kind, riff, size = riff_sizes(r.stdout)
    assert (kind, riff, size) == ("RIFF", 0xFFFFFFFF, 0xFFFFFFFF)
    (tmp_path / "s.wav").write_bytes(r.stdout)
    y, rate = sf.read(tmp_path / "s.wav")
    assert rate == fs and y.shape == x.shape


def _streams(args, first: bytes, rest: bytes, tmp_path):
    """Start the CLI with ``args``, write ``first`` to its stdin and wait (up to 120 s) for
    output before writing ``rest``: output that comes before the input ends shows the command
    streams instead of reading all of stdin first."""
    proc = popen(*args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                 stderr=open(tmp_path / "err.txt", "wb"))
    proc.stdin.write(first)
    proc.stdin.flush()
    got = b""
    end = time.monotonic() + 120
    while len(got) < 4096 and time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            b = os.read(proc.stdout.fileno(), 1 << 16)
            if not b:
                break
            got += b
    early = len(got)
    got += proc.communicate(rest, timeout=300)[0]      # both ways at once: no pipe deadlock
    assert proc.returncode == 0, (tmp_path / "err.txt").read_text()
    return early, got


def test_decode_stdin_to_stdout_streams_before_the_input_ends(tmp_path, clip):
    x, fs = clip
    long = np.concatenate([x] * 10)                     # 30 s
    data = pacodec.encode(long, fs, bitrate=32)
    early, out = _streams(["decode", "-", "-o", "-"], data[:len(data) // 2],
                          data[len(data) // 2:], tmp_path)
    assert early >= 4096
    (tmp_path / "o.wav").write_bytes(out)
    assert sf.info(tmp_path / "o.wav").frames == len(long)


def test_encode_stdin_to_stdout_streams_before_the_input_ends(tmp_path, clip):
    x, fs = clip
    long = np.concatenate([x] * 10)
    sf.write(tmp_path / "in.wav", long, fs, subtype="PCM_16")
    wav = (tmp_path / "in.wav").read_bytes()
    early, out = _streams(["encode", "-", "-o", "-", "-b", "32"], wav[:len(wav) // 2],
                          wav[len(wav) // 2:], tmp_path)
    assert early >= 4096 and out[:4] == b"PACD"
    y, _ = pacodec.decode(out)
    assert len(y) == len(long)


def test_flac_from_a_pipe_is_encoded(tmp_path, clip):
    x, fs = clip
    sf.write(tmp_path / "in.flac", x, fs)
    r = cli("encode", "-", "-o", "-", stdin=open(tmp_path / "in.flac", "rb"), check=True)
    y, rate = pacodec.decode(r.stdout)
    assert rate == fs and y.shape == x.shape


# ------------------------------------------------------------------------------- RF64
@pytest.mark.parametrize("source", ["known", "unknown"])
def test_wav_past_the_size_limit_is_rf64_in_files_and_pipes(tmp_path, pac, pac_unknown, source):
    src = pac if source == "known" else pac_unknown
    cli("decode", src, "-o", tmp_path / "ref.wav", check=True)
    ref, fs = sf.read(tmp_path / "ref.wav", dtype="int16")
    env = dict(os.environ, _PACODEC_RF64_ABOVE="100000")       # instead of 4 GiB
    cli("decode", src, "-o", tmp_path / "big.wav", env=env, check=True)
    pipe = cli("decode", src, "-o", "-", env=env, check=True).stdout
    data = (tmp_path / "big.wav").read_bytes()
    kind, riff, size = riff_sizes(data)
    assert kind == "RF64" and riff == len(data) - 8 and size == ref.size * 2
    assert sf.info(tmp_path / "big.wav").format == "RF64"
    y, _ = sf.read(tmp_path / "big.wav", dtype="int16")
    assert np.array_equal(y, ref)
    if source == "known":                       # chosen up front from the header's length
        assert pipe == data
    else:                                       # unknown on a pipe: the streaming header
        assert riff_sizes(pipe) == ("RIFF", 0xFFFFFFFF, 0xFFFFFFFF)
    small = dict(os.environ, _PACODEC_RF64_ABOVE=str(len(data)))
    cli("decode", src, "-o", tmp_path / "small.wav", env=small, check=True)
    assert (tmp_path / "small.wav").read_bytes()[:4] == b"RIFF"


def test_float_wav_output_round_trips(tmp_path, pac):
    cli("decode", pac, "-o", tmp_path / "f.wav", "--float", check=True)
    info = sf.info(tmp_path / "f.wav")
    assert info.subtype == "FLOAT"
    y, _ = sf.read(tmp_path / "f.wav", dtype="float32")
    ref, _ = pacodec.read(pac)
    assert np.array_equal(y, ref)


# ------------------------------------------------------------------------------- Unix ways
@pytest.mark.parametrize("cmd", ["info", "decode", "encode"])
def test_a_closed_pipe_ends_the_command_by_sigpipe_without_a_message(tmp_path, pac, clip, cmd):
    x, fs = clip
    if cmd == "info":
        args = ["info", "--json", pac]
    elif cmd == "decode":
        args = ["decode", pac, "-o", "-"]
    else:
        sf.write(tmp_path / "in.wav", np.concatenate([x] * 4), fs)
        args = ["encode", tmp_path / "in.wav", "-o", "-"]
    proc = popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(1)                       # like `head -c 1`: read a little and go away
    proc.stdout.close()
    err = proc.stderr.read()
    status = proc.wait(timeout=300)
    if cmd == "info":        # its output may fit the pipe buffer, written before the reader left
        assert status in (0, -signal.SIGPIPE)
    else:
        assert status == -signal.SIGPIPE      # shell status 141, as cat or gzip
    assert err == b""
    # a reader that is gone before anything is written (`| true`): the same, for every command
    r, w = os.pipe()
    os.close(r)
    proc = popen(*args, stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == -signal.SIGPIPE and err == b""


def _run_on_pty(args, which):
    """Run the CLI with ``which`` ('stdout' or 'stderr') on a pseudo-terminal; returns
    (exit status, what the terminal got, the other stream)."""
    master, slave = pty.openpty()
    kw = {which: slave, ("stderr" if which == "stdout" else "stdout"): subprocess.PIPE}
    proc = popen(*args, stdin=subprocess.DEVNULL, **kw)
    os.close(slave)
    tty = b""
    while True:
        try:
            ready, _, _ = select.select([master], [], [], 1.0)
        except InterruptedError:
            continue
        if ready:
            try:
                b = os.read(master, 1 << 16)
            except OSError:                 # EIO: the child closed the terminal
                break
            if not b:
                break
            tty += b
        elif proc.poll() is not None:
            break
    other = proc.communicate(timeout=300)[0 if which == "stderr" else 1]
    os.close(master)
    return proc.wait(), tty, other


def test_binary_output_to_a_terminal_is_refused_like_gzip(tmp_path, pac):
    status, tty, err = _run_on_pty(["decode", pac, "-o", "-"], "stdout")
    assert status == 1 and tty == b""
    assert "terminal" in one_line(err)
    status, tty, err = _run_on_pty(["encode", tmp_path / "nothing.wav", "-o", "-"], "stdout")
    assert status == 1 and "terminal" in one_line(err)


def test_binary_input_from_a_terminal_is_refused(tmp_path):
    for args in (["decode", "-", "-o", tmp_path / "o.wav"], ["encode", "-", "-o", tmp_path / "o.pac"],
                 ["info", "-"]):
        master, slave = pty.openpty()
        proc = popen(*args, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        out, err = proc.communicate(timeout=300)
        os.close(master)
        assert proc.returncode == 1 and "terminal" in one_line(err)


def test_decode_shows_progress_on_a_terminal_for_long_files(tmp_path, clip):
    x, fs = clip
    pacodec.write(tmp_path / "long.pac", np.concatenate([x] * 9), fs, bitrate=16)   # 27 s
    status, tty, _ = _run_on_pty(["decode", tmp_path / "long.pac", "-o", tmp_path / "l.wav"],
                                 "stderr")
    assert status == 0 and b"decoding [" in tty and b"100.0%" in tty
    status, tty, _ = _run_on_pty(["decode", tmp_path / "long.pac", "-o", tmp_path / "q.wav",
                                  "--quiet"], "stderr")
    assert status == 0 and b"decoding" not in tty


# ------------------------------------------------------------------------------- inputs
def test_info_reads_stdin(pac):
    r = cli("info", "-", stdin=open(pac, "rb"), text=True)
    assert r.returncode == 0 and r.stdout.startswith("<stdin>: pacodec stream")


@pytest.mark.parametrize("fmt,name", [("WAV", "WAV"), ("FLAC", "FLAC"), ("OGG", "Ogg"),
                                      ("AIFF", "AIFF")])
def test_decoding_another_audio_format_names_the_file_and_the_format(tmp_path, clip, fmt, name):
    x, fs = clip
    p = tmp_path / f"song.{fmt.lower()}"
    sf.write(p, x, fs, format=fmt)
    for args, kw in ((["decode", p, "-o", tmp_path / "o.wav"], {}),
                     (["info", p], {}), (["decode", "-", "-o", tmp_path / "o.wav"],
                                         {"stdin": open(p, "rb")})):
        r = cli(*args, **kw)
        err = one_line(r.stderr)
        assert r.returncode == 1 and f"this is a{'n' if name[0] in 'AO' else ''} {name} file" in err
        assert "pacodec encode" in err
        assert (str(p) in err) if "-" not in args else ("<stdin>" in err)
    assert not (tmp_path / "o.wav").exists()


def test_output_name_without_an_extension_is_explained(tmp_path, pac):
    r = cli("decode", pac, "-o", tmp_path / "noext", text=True)
    assert r.returncode == 1 and "'noext'" in one_line(r.stderr) and "extension" in r.stderr


def test_headerless_stream_from_a_fifo_decodes(tmp_path, pac):
    """A stream without a header (a recorded live stream) on a FIFO: PacFile reads ahead to the
    first in-band configuration; the output equals that of the same bytes in a regular file."""
    from pacodec import container as ct
    body = pac.read_bytes()[ct.HEADER_SIZE:]
    (tmp_path / "hl.pac").write_bytes(body)
    assert cli("decode", tmp_path / "hl.pac", "-o", tmp_path / "file.wav").returncode == 0
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = popen("decode", fifo, "-o", tmp_path / "fifo.wav", stderr=subprocess.PIPE)
    with open(fifo, "wb") as w:
        w.write(body)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 0, err
    assert (tmp_path / "fifo.wav").read_bytes() == (tmp_path / "file.wav").read_bytes()


def test_truncated_flac_is_a_one_line_error(tmp_path, clip):
    x, fs = clip
    sf.write(tmp_path / "in.flac", np.concatenate([x] * 3), fs)
    data = (tmp_path / "in.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[:len(data) // 2])
    r = cli("encode", tmp_path / "cut.flac", "-o", tmp_path / "o.pac")
    assert r.returncode == 1 and "cut.flac" in one_line(r.stderr)
    assert not (tmp_path / "o.pac").exists()
    assert [n for n in os.listdir(tmp_path) if "partial" in n] == []


def test_wav_header_claiming_fewer_frames_than_present_warns(tmp_path, clip):
    x, fs = clip
    sf.write(tmp_path / "in.wav", x, fs, subtype="PCM_16")
    data = bytearray((tmp_path / "in.wav").read_bytes())
    pos = data.index(b"data")
    half = (len(x) // 2) * 4
    data[pos + 4:pos + 8] = struct.pack("<I", half)
    data[4:8] = struct.pack("<I", pos + 8 + half - 8)
    (tmp_path / "short.wav").write_bytes(bytes(data))
    r = cli("encode", tmp_path / "short.wav", "-o", tmp_path / "o.pac", "--quiet", text=True)
    assert r.returncode == 0
    assert "declares" in one_line(r.stderr) and "warning" in r.stderr
    assert pacodec.info(tmp_path / "o.pac").frames == len(x) // 2
    # a WAV with ordinary chunks after its data (LIST) is not flagged
    sf.write(tmp_path / "ok.wav", x, fs, subtype="PCM_16")
    with open(tmp_path / "ok.wav", "ab") as fh:
        fh.write(b"LIST" + struct.pack("<I", 4) + b"INFO")
    r = cli("encode", tmp_path / "ok.wav", "-o", tmp_path / "ok.pac", "--quiet", text=True)
    assert r.returncode == 0 and r.stderr == ""


def test_a_254_character_output_name_works(tmp_path, clip):
    x, fs = clip
    sf.write(tmp_path / "in.wav", x, fs)
    name = "n" * 250 + ".pac"
    r = cli("encode", tmp_path / "in.wav", "-o", tmp_path / name, "--quiet")
    assert r.returncode == 0, r.stderr
    assert pacodec.info(tmp_path / name).frames == len(x)
    r = cli("decode", tmp_path / name, "-o", tmp_path / ("w" * 250 + ".wav"))
    assert r.returncode == 0, r.stderr


def test_partial_of_a_live_writer_in_another_pid_namespace_is_kept(tmp_path, clip):
    """A writer in another PID namespace (a container on shared storage) has a pid that looks
    dead here; the lock it holds on its partial keeps the cleanup away."""
    import fcntl
    x, fs = clip
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                                   # a pid that no longer exists here
    partial = tmp_path / f".other.pac.pacodec-partial-{dead.pid}-0123abcd"
    partial.write_bytes(b"in progress" * 100)
    holder = open(partial, "rb")
    fcntl.flock(holder.fileno(), fcntl.LOCK_EX)   # the live writer's lock
    pacodec.write(tmp_path / "a.pac", x[:1000], fs)
    assert partial.exists()
    holder.close()                                # the writer died: its lock is gone
    pacodec.write(tmp_path / "b.pac", x[:1000], fs)
    assert not partial.exists()


def test_a_signal_while_the_partial_is_created_leaves_no_partial(tmp_path):
    """A batch worker's SIGTERM raises; landing just after the partial exists but before the
    block that removes it (the window a killed batch run hit) must still clean up."""
    code = f"""
import builtins, os, signal, sys
import pacodec.pacfile as pf
def term(signum, frame):
    raise SystemExit(143)
signal.signal(signal.SIGTERM, term)
real_open = builtins.open
def open_then_signal(path, *a, **k):
    fh = real_open(path, *a, **k)
    if "pacodec-partial" in str(path):
        os.kill(os.getpid(), signal.SIGTERM)    # arrives while open() returns
    return fh
pf.open = open_then_signal
try:
    with pf.atomic_output({str(tmp_path / "out.pac")!r}) as fh:
        fh.write(b"x" * 100)
except SystemExit as e:
    sys.exit(e.code)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 143, r.stderr
    assert sorted(os.listdir(tmp_path)) == []


def test_unwritable_numba_cache_falls_back_with_one_line(tmp_path, pac):
    """Neither the package directory nor $HOME (nor NUMBA_CACHE_DIR) writable -- as for a
    service account or a read-only container: a regular file where each directory would be
    created makes every one of numba's cache locations fail, even for root."""
    pkg = tmp_path / "site"
    shutil.copytree(ROOT / "pacodec", pkg / "pacodec",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    for d in [pkg / "pacodec", *[p for p in (pkg / "pacodec").rglob("*") if p.is_dir()]]:
        (d / "__pycache__").write_bytes(b"")      # in-tree cache: cannot be a directory
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(pkg), HOME=str(blocker / "home"),
               XDG_CACHE_HOME=str(blocker / "cache"), NUMBA_CACHE_DIR=str(blocker / "numba"),
               TMPDIR=str(tmp), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pacodec", "info", str(pac)], env=env,
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "NUMBA_CACHE_DIR" in one_line(r.stderr) and str(tmp) in r.stderr
    assert "pacodec stream" in r.stdout
    cache = tmp / f"pacodec-numba-cache-{os.getuid()}"
    assert cache.is_dir() and (cache.stat().st_mode & 0o777) == 0o700


def test_a_fresh_empty_partial_of_a_dead_writer_is_removed_by_the_next_write(tmp_path, clip):
    """``kill -9`` right after the partial was created (before any bytes reached it) leaves an
    empty, seconds-old file; the next write in the directory removes it, as for any other."""
    x, fs = clip
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sf.write(tmp_path / "in.wav", x[:2000], fs)
    out = tmp_path / "o"
    out.mkdir()
    partial = out / f".a.pac.pacodec-partial-{dead.pid}-0123abcd"
    partial.write_bytes(b"")
    r = cli("encode", tmp_path / "in.wav", "-o", out / "b.pac", "--quiet")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["b.pac"]


def test_a_partial_removed_before_its_writer_locked_it_is_recreated(tmp_path, monkeypatch):
    """Another process's cleanup may take the lock of a partial that was just created and not
    yet locked, and remove it; the writer notices and goes on under a new name."""
    import pacodec.pacfile as pf
    real_open = open
    taken = []

    def open_then_lose_it(path, *a, **k):
        fh = real_open(path, *a, **k)
        if "pacodec-partial" in str(path) and not taken:
            taken.append(path)
            os.unlink(path)                       # what the foreign cleanup does
        return fh
    monkeypatch.setattr(pf, "open", open_then_lose_it, raising=False)
    with pf.atomic_output(tmp_path / "out.pac") as fh:
        fh.write(b"complete")
    assert taken and (tmp_path / "out.pac").read_bytes() == b"complete"
    assert sorted(os.listdir(tmp_path)) == ["out.pac"]


def test_the_partial_stays_locked_until_it_has_its_final_name(tmp_path, monkeypatch):
    """Closing the partial before renaming it would leave a moment in which a live writer's
    complete file looks abandoned (free lock) to another process's cleanup."""
    import fcntl

    import pacodec.pacfile as pf
    real_replace = os.replace
    seen = []

    def replace(src, dst):
        with open(src, "rb") as other:
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        return real_replace(src, dst)
    monkeypatch.setattr(pf.os, "replace", replace)
    with pf.atomic_output(tmp_path / "out.pac") as fh:
        fh.write(b"x" * 100)
    assert seen == ["held"] and sorted(os.listdir(tmp_path)) == ["out.pac"]
