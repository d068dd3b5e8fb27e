"""The GStreamer elements (pacodec/gst), run as gst-launch-1.0 pipelines in subprocesses.

Pipelines that must fail run through a small PyGObject runner instead (see RUNNER).

Skipped only when gst-launch-1.0 is not installed (Debian packages: gstreamer1.0-tools
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-python3-plugin-loader
python3-gst-1.0).  Every subprocess wait has a timeout; the first pipeline may compile the
numba kernels inside GStreamer's embedded Python, hence the generous limit.
"""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

import pacodec
import pacodec.gst
from pacodec import container as ct

TIMEOUT = 300
needs_gst = pytest.mark.skipif(shutil.which("gst-launch-1.0") is None,
                               reason="gst-launch-1.0 is not installed (apt-get install "
                                      "gstreamer1.0-tools and the GStreamer Python loader)")


@pytest.fixture(scope="session")
def gst_env(tmp_path_factory):
    env = dict(os.environ)
    env.update(pacodec.gst.env())
    env["GST_REGISTRY"] = str(tmp_path_factory.mktemp("gst") / "registry.bin")
    return env


def gst(env, *pipeline, timeout=TIMEOUT):
    """Run gst-launch-1.0 with a pipeline given as separate arguments."""
    return subprocess.run(["gst-launch-1.0", "-q", *map(str, pipeline)], env=env,
                          capture_output=True, text=True, timeout=timeout)


# Pipelines expected to fail run through this instead of gst-launch-1.0, which can hang when an
# element posts an error within its first milliseconds (gst-launch quits its main loop from the
# bus sync handler, before running it).  It prints the error like gst-launch and exits 1.
RUNNER = """
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
pipe = Gst.parse_launch(sys.argv[1])
pipe.set_state(Gst.State.PLAYING)
msg = pipe.get_bus().timed_pop_filtered(int(sys.argv[2]) * Gst.SECOND,
                                        Gst.MessageType.ERROR | Gst.MessageType.EOS)
pipe.set_state(Gst.State.NULL)
if msg is None:
    sys.exit("timed out")
if msg.type == Gst.MessageType.ERROR:
    err, debug = msg.parse_error()
    print(f"ERROR: from element {msg.src.get_path_string()}: {err.message}")
    sys.exit(1)
"""
SYSTEM_PYTHON = "/usr/bin/python3"     # the Python that GStreamer's loader embeds (has gi)


def gst_run(env, pipeline: str):
    return subprocess.run([SYSTEM_PYTHON, "-c", RUNNER, pipeline, str(TIMEOUT)], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT + 30)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "pacodec", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------ no GStreamer needed
def test_env_points_at_the_plugin_and_the_dependencies():
    path = pacodec.gst.plugin_path()
    for name in pacodec.gst.ELEMENTS:
        assert os.path.isfile(os.path.join(path, "python", name + ".py"))
    e = pacodec.gst.env({"GST_PLUGIN_PATH": "/x", "PYTHONPATH": "/y"})
    assert e["GST_PLUGIN_PATH"].split(os.pathsep) == [path, "/x"]
    pp = e["PYTHONPATH"].split(os.pathsep)
    assert pp[0] == os.path.dirname(os.path.dirname(path)) and pp[-1] == "/y"
    import numpy
    assert os.path.dirname(os.path.dirname(numpy.__file__)) in pp
    assert "export GST_PLUGIN_PATH=" in pacodec.gst.shell_env()


# ------------------------------------------------------------------------------ pipelines
@needs_gst
def test_inspect_documents_the_encoder_properties(gst_env):
    p = subprocess.run(["gst-inspect-1.0", "pacodecenc"], env=gst_env, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert p.returncode == 0, (
        f"{p.stdout}{p.stderr}\nThe elements did not load: is gstreamer1.0-python3-plugin-loader "
        f"installed, and does {SYSTEM_PYTHON} (which GStreamer embeds) have the same X.Y version "
        f"as this Python ({sys.version.split()[0]}), so that numpy/numba from "
        f"{pacodec.gst.env()['PYTHONPATH']} import there?")
    for prop in ("bitrate", "quality", "distance", "quantizer", "window", "low-delay"):
        assert f"\n  {prop} " in p.stdout
    for name in pacodec.gst.ELEMENTS[1:]:
        ok(subprocess.run(["gst-inspect-1.0", name], env=gst_env, capture_output=True, text=True,
                          timeout=TIMEOUT))


@needs_gst
@pytest.mark.parametrize("rate,channels,fmt,props", [
    (48000, 2, "F32LE", ["bitrate=96"]),
    (22050, 1, "S16LE", ["low-delay=true", "quality=9"]),
])
def test_encode_to_file_then_cli_decode_has_exact_length(tmp_path, gst_env, rate, channels, fmt,
                                                          props):
    nbuf, spb = 37, 1000
    out = tmp_path / "t.pac"
    ok(gst(gst_env, "audiotestsrc", f"num-buffers={nbuf}", f"samplesperbuffer={spb}", "!",
           f"audio/x-raw,rate={rate},channels={channels},format={fmt}", "!",
           "pacodecenc", *props, "!", "filesink", f"location={out}"))
    assert out.read_bytes()[:4] == ct.MAGIC
    ok(cli("decode", out, "-o", tmp_path / "t.wav", "--float"))
    y, fs = sf.read(tmp_path / "t.wav", always_2d=True)
    assert fs == rate and y.shape == (nbuf * spb, channels)
    assert_sine(y[:, 0], rate)


def assert_sine(y, rate):
    """audiotestsrc's default signal: a 440 Hz sine at volume 0.8."""
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spectrum) * rate / len(y) - 440) < 5
    assert abs(np.sqrt(np.mean(y ** 2)) / (0.8 / np.sqrt(2)) - 1) < 0.2


@pytest.fixture
def cli_pac(tmp_path, piano):
    x, fs = piano
    src = tmp_path / "in.wav"
    sf.write(src, x[: 3 * fs], fs, subtype="PCM_16")
    ok(cli("encode", src, "-o", tmp_path / "in.pac", "-b", 128))
    return tmp_path / "in.pac"


DAMAGED = (10, 11, 60)


def damage(path, frames=DAMAGED):
    """Flip a byte inside some frames (their CRC fails: parser and decoder must skip them)."""
    d = bytearray(path.read_bytes())
    pos, starts = ct.frames_start(d), []
    while pos < len(d):
        starts.append(pos)
        pos += ct.parse_frame_at(d, pos).size
    for i in frames:
        d[starts[i] + 12] ^= 0xFF
    path.write_bytes(bytes(d))


@needs_gst
@pytest.mark.parametrize("damaged", [False, True])
def test_parse_and_decode_a_cli_file_matches_cli_decode(tmp_path, gst_env, cli_pac, damaged):
    if damaged:
        damage(cli_pac)
    ok(cli("decode", cli_pac, "-o", tmp_path / "cli.wav", "--float"))
    ok(gst(gst_env, "filesrc", f"location={cli_pac}", "!", "pacodecparse", "!", "pacodecdec",
           "!", "wavenc", "!", "filesink", f"location={tmp_path / 'gst.wav'}"))
    a, fa = sf.read(tmp_path / "cli.wav", dtype="float32", always_2d=True)
    b, fb = sf.read(tmp_path / "gst.wav", dtype="float32", always_2d=True)
    assert fa == fb and a.shape == b.shape
    same = np.ones(len(a), bool)
    if damaged:
        # both conceal the lost frames, the CLI in byte-stream mode, pacodecdec frame by frame
        # (Decoder.decode_packet): the concealed stretches may differ, all else is identical
        n = pacodec.info(str(cli_pac)).frame_size
        for k in DAMAGED:                     # frame k's output: input [(k-1)n, kn) + overlap
            same[max(0, (k - 3) * n):(k + 2) * n] = False
        assert np.isfinite(b).all() and np.abs(b[~same]).max() < 2 * np.abs(a).max()
    assert np.abs(a - b)[same].max() <= 1e-6


@needs_gst
@pytest.mark.parametrize("keyed", [False, True], ids=["plain", "key-file"])
def test_udp_stream_between_two_pipelines(tmp_path, gst_env, keyed):
    port, out = free_udp_port(), tmp_path / "udp.wav"
    key = []
    if keyed:       # pay and depay share a key: every packet carries a MAC and is checked
        (tmp_path / "k.key").write_text("5a" * 32 + "\n")
        key = [f"key-file={tmp_path / 'k.key'}"]
    recv = subprocess.Popen(
        ["gst-launch-1.0", "-e", "udpsrc", f"port={port}", "address=127.0.0.1",
         "caps=application/x-pacodec-packet", "!", "pacodecdepay", "stop-at-end=true", *key,
         "!",
         "pacodecdec", "!", "wavenc", "!", "filesink", f"location={out}"],
        env=gst_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in recv.stdout], daemon=True).start()
    log = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any("PLAYING" in x for x in log):     # udpsrc is bound from PAUSED on
            try:
                log.append(lines.get(timeout=1))
            except queue.Empty:
                assert recv.poll() is None and time.monotonic() < deadline, "".join(log)
        nbuf, spb = 100, 480                             # one second at 48 kHz
        ok(gst(gst_env, "audiotestsrc", f"num-buffers={nbuf}", f"samplesperbuffer={spb}", "!",
               "audio/x-raw,rate=48000,channels=2", "!", "pacodecenc", "low-delay=true", "!",
               "pacodecpay", *key, "!", "udpsink", "host=127.0.0.1", f"port={port}"))
        try:        # the end-of-stream frame ends the receiver; if it was lost, stop it
            recv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recv.send_signal(signal.SIGINT)
            recv.wait(timeout=TIMEOUT)
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.wait(timeout=30)
    assert recv.returncode == 0, "".join(log)
    y, fs = sf.read(out, always_2d=True)
    assert fs == 48000 and y.shape[1] == 2
    assert 0 < len(y) <= nbuf * spb
    assert_sine(y[:, 1], fs)


@needs_gst
@pytest.mark.parametrize("rate,channels", [(7000, 1), (8000, 9)])
def test_unsupported_input_is_a_clear_element_error(tmp_path, gst_env, rate, channels):
    # caps forced by upstream (wavparse) reach the encoder, which says why it refuses them
    src = tmp_path / "bad.wav"
    sf.write(src, np.zeros((rate // 10, channels)), rate)
    p = gst_run(gst_env, f"filesrc location={src} ! wavparse ! pacodecenc ! fakesink")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "ERROR: from element /GstPipeline:pipeline0/PacodecEnc:pacodecenc0" in out
    assert f"cannot encode {rate} Hz, {channels} channel(s)" in out
    assert "Traceback" not in out
    # a fixed capsfilter fails at link time, naming the encoder
    p = gst(gst_env, "audiotestsrc", "num-buffers=1", "!",
            f"audio/x-raw,rate={rate},channels={channels}", "!", "pacodecenc", "!", "fakesink")
    assert p.returncode == 1 and "pacodecenc0 can't handle caps" in p.stdout + p.stderr


@needs_gst
def test_parser_rejects_a_file_that_is_not_pacodec(tmp_path, gst_env):
    junk = tmp_path / "junk.pac"
    junk.write_bytes(bytes(range(256)) * 64)
    p = gst_run(gst_env, f"filesrc location={junk} ! pacodecparse ! pacodecdec ! fakesink")
    assert p.returncode == 1 and "no pacodec frame found" in p.stdout, p.stdout + p.stderr


# The real element on the table of tests/test_options.py: properties set one by one, then the
# options its encoder would be built with (or the error it would post), as JSON per row.
OPTIONS_RUNNER = """
import dataclasses, json, sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
out = []
for props in json.loads(sys.argv[1]):
    e = Gst.ElementFactory.make("pacodecenc")
    for k, v in props.items():
        e.set_property(k, v)
    try:
        out.append(dataclasses.asdict(e.coding_options()))
    except Exception as ex:
        out.append(str(ex))
print(json.dumps(out))
"""


@needs_gst
def test_gst_encoder_resolves_options_like_every_other_front_end(gst_env):
    """pacodecenc, given the properties of each row of test_options' table that its property
    ranges admit, builds its encoder from the options the CLI and Python get, or reports the
    same conflict (its element error is this text after "pacodecenc: ")."""
    import dataclasses
    import json

    from test_options import ROWS, as_gst, reference
    outside = {"quality-11", "bitrate-3", "mu-0"}      # GObject refuses these values itself
    rows = [(name, as_gst(given), given) for name, given, _ in ROWS
            if as_gst(given) is not None and name not in outside]
    p = subprocess.run([SYSTEM_PYTHON, "-c", OPTIONS_RUNNER, json.dumps([r[1] for r in rows])],
                       env=gst_env, capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert len(got) == len(rows) > 15
    for (name, _, given), g in zip(rows, got):
        try:
            want = dataclasses.asdict(reference(given))
        except pacodec.UnsupportedError as e:
            want = str(e)
        assert g == want, name


@needs_gst
def test_gst_encoder_with_two_rate_properties_posts_the_cli_error(gst_env, tmp_path):
    """distance no longer silently overrides quality: the pipeline fails with the text the
    CLI prints for -q 5 -d 1."""
    p = gst_run(gst_env, f"audiotestsrc num-buffers=5 ! pacodecenc quality=5 distance=1 ! "
                         f"filesink location={tmp_path / 'x.pac'}")
    assert p.returncode == 1
    assert ("pacodecenc: conflicting options: quality and distance (give one rate option: "
            "bitrate, abr, quality or distance)") in p.stdout, p.stdout + p.stderr


@needs_gst
def test_gst_encoder_with_default_properties_writes_the_frames_the_cli_writes(tmp_path, gst_env):
    """pacodecenc's defaults (quantizer, mu, rate mode: VBR at the default quality) are the
    CLI's: the same input gives the same frames (the header differs only in the length field:
    a pipeline cannot rewrite it; the CLI adds a metadata block with the loudness)."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((44100, 2)) * 0.1).astype(np.float32)
    wav = tmp_path / "in.wav"
    sf.write(wav, x, 44100, subtype="FLOAT")
    ok(cli("encode", wav, "-o", tmp_path / "cli.pac"))
    ok(gst(gst_env, "filesrc", f"location={wav}", "!", "wavparse", "!", "pacodecenc", "!",
           "filesink", f"location={tmp_path / 'gst.pac'}"))
    a = (tmp_path / "cli.pac").read_bytes()
    b = (tmp_path / "gst.pac").read_bytes()
    ha, hb = ct.unpack_header(a), ct.unpack_header(b)
    assert ha.config == hb.config and ha.total_length == len(x) and hb.total_length is None
    assert a[ct.frames_start(a):] == b[ct.HEADER_SIZE:] and ct.frames_start(b) == ct.HEADER_SIZE


@needs_gst
def test_pipelines_print_no_gstreamer_critical(gst_env, tmp_path):
    """Elements are created with the floating reference gst_element_factory_create expects
    (no "GStreamer-CRITICAL: The created element should be floating")."""
    r = gst(gst_env, "audiotestsrc", "num-buffers=20", "!", "audioconvert", "!", "pacodecenc",
            "!", "pacodecparse", "!", "pacodecdec", "!", "audioconvert", "!", "wavenc", "!",
            "filesink", f"location={tmp_path / 'o.wav'}")
    assert r.returncode == 0, r.stderr
    assert "CRITICAL" not in r.stderr and "floating" not in r.stderr
    assert sf.info(tmp_path / "o.wav").frames > 0


# ------------------------------------------------------------------------------ type finder
def _peek_of(data: bytes):
    return lambda offset, size: data[offset:offset + size] if offset + size <= len(data) else None


def test_typefinder_recognises_pacodec_streams_and_nothing_else(tmp_path, cli_pac):
    from pacodec.gst import typefind as tf
    data = cli_pac.read_bytes()
    assert tf.identify(_peek_of(data)) == tf.MAXIMUM                 # header, CRC valid
    damaged = data[:6] + bytes([data[6] ^ 1]) + data[7:]
    assert tf.identify(_peek_of(damaged)) == tf.LIKELY                # magic, CRC fails
    body = data[ct.frames_start(data):]                     # a headerless stream
    assert tf.identify(_peek_of(body)) == tf.NEARLY_CERTAIN
    first = ct.parse_frame_at(body, 0).size
    assert tf.identify(_peek_of(body[:first])) == tf.POSSIBLE         # one frame, then the end
    assert tf.identify(_peek_of(body[:first + 9])) == tf.POSSIBLE     # the second one truncated
    assert tf.identify(_peek_of(body[1:])) is None                    # not at a sync word
    bad = bytearray(body)
    bad[first - 1] ^= 1                                               # the first frame's CRC
    assert tf.identify(_peek_of(bytes(bad))) is None
    rng = np.random.default_rng(1)
    for _ in range(200):
        junk = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
        assert tf.identify(_peek_of(b"\xca\x5e" + junk)) is None
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros((100, 1)), 8000)
    assert tf.identify(_peek_of(wav.read_bytes())) is None
    assert tf.identify(_peek_of(b"")) is None


@needs_gst
def test_typefinder_is_registered(gst_env):
    p = subprocess.run(["gst-inspect-1.0", pacodec.gst.TYPEFINDER], env=gst_env,
                       capture_output=True, text=True, timeout=TIMEOUT)
    ok(p)
    assert "audio/x-pacodec" in p.stdout and "pac" in p.stdout


@needs_gst
@pytest.mark.parametrize("header", [True, False], ids=["file", "headerless"])
@pytest.mark.parametrize("bin_", ["decodebin", "playbin"])
def test_decodebin_and_playbin_play_a_pac_file(tmp_path, gst_env, cli_pac, header, bin_):
    """No element named: the type finder recognises the stream and decodebin (alone or inside
    playbin, as gst-play-1.0 and every player use it) plugs pacodecparse ! pacodecdec."""
    src = cli_pac
    if not header:
        src = tmp_path / "live.bin"          # a recorded stream: no header, no .pac extension
        data = cli_pac.read_bytes()           # no header, no metadata block (§3.3)
        src.write_bytes(data[ct.frames_start(data):])
    ok(cli("decode", src, "-o", tmp_path / "cli.wav", "--float"))
    out = tmp_path / "gst.wav"
    sink = f"audioconvert ! audio/x-raw,format=F32LE ! wavenc ! filesink location={out}"
    if bin_ == "decodebin":
        ok(gst(gst_env, "filesrc", f"location={src}", "!", "decodebin", "!",
               *sink.split(" ")))
    else:
        ok(gst(gst_env, "playbin", f"uri={src.as_uri()}", f"audio-sink={sink}"))
    a, fa = sf.read(tmp_path / "cli.wav", dtype="float32", always_2d=True)
    b, fb = sf.read(out, dtype="float32", always_2d=True)
    assert fa == fb and a.shape == b.shape
    assert np.abs(a - b).max() <= 1e-6


@needs_gst
def test_a_failed_first_scan_does_not_stick(tmp_path):
    """`gst-inspect-1.0 pacodecenc` before `eval "$(pacodec gst-path --env)"`, from a virtual
    environment, fails ("pygobject initialization failed") and GStreamer records the Python
    loader as broken in its registry cache.  The environment of `pacodec gst-path --env` must
    work anyway, and also after a failed scan under its own registry file."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GST_")}
    base["XDG_CACHE_HOME"] = str(tmp_path / "cache")   # GStreamer's and pacodec's caches
    base["PATH"] = os.path.dirname(sys.executable) + os.pathsep + base.get("PATH", "")
    bare = {k: v for k, v in base.items() if k != "PYTHONPATH"}

    def sh(script, env):
        return subprocess.run(["bash", "-c", script], env={**env, "PY": sys.executable},
                              capture_output=True, text=True, timeout=TIMEOUT)

    sh("gst-inspect-1.0 pacodecenc", bare)              # the first, premature run
    readme = ('eval "$("$PY" -m pacodec gst-path --env)" && gst-inspect-1.0 pacodecenc && '
              f'gst-inspect-1.0 {pacodec.gst.TYPEFINDER} && echo "$GST_REGISTRY"')
    p = sh(readme, base)
    ok(p)
    registry = p.stdout.strip().splitlines()[-1]
    assert registry.startswith(str(tmp_path / "cache" / "pacodec"))
    # now a scan that fails under pacodec's own registry file (the loader without PyGObject)
    os.unlink(registry)
    sh(f"GST_REGISTRY={registry} gst-inspect-1.0 pacodecenc", bare)
    assert os.path.exists(registry)
    assert b"pacodecenc\0" not in open(registry, "rb").read()
    ok(sh(readme, base))                                 # the same line again heals it


@needs_gst
@pytest.mark.skipif(shutil.which("gst-play-1.0") is None,
                    reason="gst-play-1.0 is not installed (gstreamer1.0-plugins-base-apps)")
def test_gst_play_plays_a_pac_file(gst_env, cli_pac):
    p = subprocess.run(["gst-play-1.0", "--audiosink=fakesink", "--no-interactive", str(cli_pac)],
                       env=gst_env, capture_output=True, text=True, timeout=TIMEOUT)
    ok(p)
    assert "Reached end of play list" in p.stdout and "rror" not in p.stdout + p.stderr


@needs_gst
def test_parse_posts_the_tags_and_the_replaygain_of_the_metadata_block(gst_env, tmp_path):
    """FORMAT.md §3.3: pacodecparse pushes the block's tags as a stream tag list (what players
    show) and its loudness as the ReplayGain track gain."""
    t = np.arange(16000) / 16000
    x = np.stack([0.1 * np.sin(2 * np.pi * 1000 * t)] * 2, 1)
    pac = tmp_path / "t.pac"
    pacodec.write(pac, x, 16000, bitrate=48, tags={"TITLE": "Ünï ✓", "ARTIST": "A",
                                                   "TRACKNUMBER": "4/12", "DATE": "2024"})
    gain = pacodec.info(pac).gain
    r = subprocess.run(["gst-launch-1.0", "-t", "filesrc", f"location={pac}", "!", "pacodecparse",
                        "!", "pacodecdec", "!", "fakesink"], env=gst_env, capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    for line in ("title: Ünï ✓", "artist: A", "track number: 4", "datetime: 2024",
                 f"replaygain track gain: {gain:.6f}"):
        assert line in r.stdout, (line, r.stdout)
    assert "WARNING" not in r.stderr
