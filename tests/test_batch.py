"""``pacodec batch``: tree mirroring, manifest, resume, skip-on-error, SIGKILL, local pool, Dask."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

import pacodec
from pacodec import batch
from pacodec.cli import main

SETTINGS = batch.encode_settings(distance=1.0)


def make_tree(root, rng, n=4, seconds=0.4):
    """n good files (mono/stereo, several rates, WAV/FLAC, in subdirectories), one corrupt
    WAV, one text file."""
    specs = [(16000, 1, "wav"), (44100, 2, "flac"), (22050, 2, "wav"), (48000, 1, "flac")]
    files = []
    for i in range(n):
        rate, ch, ext = specs[i % len(specs)]
        d = root / ("speech" if i % 2 else "music") / f"set{i // 4}"
        d.mkdir(parents=True, exist_ok=True)
        x = rng.standard_normal((int(seconds * rate * (1 + i % 3)), ch)) * 0.1
        p = d / f"clip{i}.{ext}"
        sf.write(p, x, rate, subtype="PCM_16")
        files.append(p)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    (root / "notes.txt").write_text("not audio")
    return files


def records(out, type_=None):
    with open(out / batch.MANIFEST) as f:
        recs = [json.loads(line) for line in f]
    return [r for r in recs if type_ is None or r["type"] == type_]


def last_run(out):
    """The records of the latest run (after its 'run' record)."""
    recs = records(out)
    start = max(i for i, r in enumerate(recs) if r["type"] == "run")
    return recs[start:]


def pac_tree(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.pac"))}


def cli(*args):
    return main(["batch", *[str(a) for a in args]])


@pytest.fixture
def tree(tmp_path, rng):
    src = tmp_path / "in"
    return src, make_tree(src, rng)


def test_batch_mirrors_the_tree_lists_bad_files_and_writes_a_full_manifest(tmp_path, tree, capsys):
    src, files = tree
    out = tmp_path / "out"
    assert cli(src, out, "-d", "1", "-j", "1") == 1          # 1: a file failed
    err = capsys.readouterr().err
    assert "pacodec: failed: broken.wav: not a readable audio file" in err
    assert "4 encoded" in err and "1 failed" in err
    assert sorted(pac_tree(out)) == sorted(str(f.relative_to(src).with_suffix(".pac")) for f in files)
    assert not list(out.rglob("*.txt")) and not list(out.rglob(".*partial*"))
    (run,) = records(out, "run")
    assert run["settings"] == SETTINGS and run["to_do"] == 5
    recs = {r["input"]: r for r in records(out, "file")}
    assert len(recs) == 4
    for f in files:
        r = recs[str(f.relative_to(src))]
        x, fs = sf.read(f, always_2d=True)
        pac = out / r["output"]
        assert (r["samplerate"], r["channels"], r["frames"]) == (fs, x.shape[1], len(x))
        assert r["duration"] == pytest.approx(len(x) / fs)
        assert r["input_size"] == f.stat().st_size and r["input_mtime_ns"] == f.stat().st_mtime_ns
        assert r["output_size"] == pac.stat().st_size
        assert r["bitrate_kbps"] == pytest.approx(8 * r["output_size"] / r["duration"] / 1000, rel=1e-3)
        assert r["dcr"] == pytest.approx(1 - r["output_size"] / (len(x) * x.shape[1] * 2), abs=1e-5)
        assert 0.5 < r["dcr"] < 1
        assert r["settings"] == SETTINGS and r["seconds"] > 0 and len(r["output_sha256"]) == 64
        y, rate = pacodec.read(pac)
        assert rate == fs and y.shape == x.shape
    (bad,) = records(out, "error")
    assert bad["input"] == "broken.wav" and "not a readable audio file" in bad["error"]
    (s,) = records(out, "summary")
    assert (s["files"], s["processed"], s["failed"]) == (4, 4, 1)
    assert s["failures"] == [{"input": "broken.wav", "error": bad["error"]}]
    assert s["audio_hours"] == pytest.approx(sum(r["duration"] for r in recs.values()) / 3600, rel=1e-4)
    total_out = sum(r["output_size"] for r in recs.values())
    assert s["dcr"] == pytest.approx(1 - total_out / s["pcm16_bytes"], abs=1e-5)
    assert s["files_per_second"] > 0 and s["audio_hours_per_hour"] > 0


def test_rerun_skips_finished_files_and_retries_failed_ones(tmp_path, tree, capsys):
    src, files = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.pac")}
    assert cli(src, out, "-d", "1", "-j", "1") == 1
    assert "0 encoded, 4 up to date, 1 failed" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pac")} == before
    rerun = last_run(out)
    assert not [r for r in rerun if r["type"] == "file"]
    assert [r["input"] for r in rerun if r["type"] == "error"] == ["broken.wav"]
    (src / "broken.wav").unlink()                    # fixed (removed): the batch now succeeds
    assert cli(src, out, "-d", "1", "-j", "1") == 0


def test_changed_settings_encode_everything_again(tmp_path, tree):
    src, _ = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1")
    first = pac_tree(out)
    cli(src, out, "-d", "4", "-j", "1")
    redone = [r for r in last_run(out) if r["type"] == "file"]
    assert len(redone) == 4 and all(r["settings"]["distance"] == 4.0 for r in redone)
    second = pac_tree(out)
    assert second.keys() == first.keys()
    assert all(len(second[k]) < len(first[k]) for k in first)      # coarser: smaller files
    cli(src, out, "-d", "4", "--quantizer", "mulaw", "-j", "1")
    assert len([r for r in last_run(out) if r["type"] == "file"]) == 4


def test_resume_follows_input_content_and_output_state_not_names(tmp_path, tree, rng):
    src, files = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1")
    changed, touched, lost, damaged = files
    x, fs = sf.read(changed, always_2d=True)
    sf.write(changed, x[::-1].copy(), fs, subtype="PCM_16")    # same size, new content
    os.utime(touched, ns=(1, 1))                          # new mtime, same content
    pac = lambda f: out / f.relative_to(src).with_suffix(".pac")   # noqa: E731
    pac(lost).unlink()
    with open(pac(damaged), "r+b") as fh:                   # output cut short
        fh.truncate(100)
    cli(src, out, "-d", "1", "-j", "1")
    redone = sorted(r["input"] for r in last_run(out) if r["type"] == "file")
    assert redone == sorted(str(f.relative_to(src)) for f in (changed, lost, damaged))
    assert pacodec.read(pac(damaged))[0].shape == sf.read(damaged, always_2d=True)[0].shape


def test_verify_catches_an_output_changed_in_place(tmp_path, tree):
    src, files = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1")
    p = out / files[0].relative_to(src).with_suffix(".pac")
    data = bytearray(p.read_bytes())
    data[-20] ^= 0xFF                                        # same size, different bytes
    p.write_bytes(bytes(data))
    cli(src, out, "-d", "1", "-j", "1")
    assert not [r for r in last_run(out) if r["type"] == "file"]    # size check only
    cli(src, out, "-d", "1", "-j", "1", "--verify")
    assert [r["input"] for r in last_run(out) if r["type"] == "file"] == [
        str(files[0].relative_to(src))]


def test_include_exclude_dry_run_and_name_collisions(tmp_path, tree, rng, capsys):
    src, files = tree
    sf.write(src / "music" / "set0" / "clip0.flac", rng.standard_normal(8000) * .1, 16000)
    out = tmp_path / "out"
    assert cli(src, out, "-d", "1", "--dry-run") == 0
    captured = capsys.readouterr()
    assert not out.exists()
    assert "would encode 6 files" in captured.err and "1 other files ignored" in captured.err
    assert "music/set0/clip0.wav -> music/set0/clip0.wav.pac" in captured.out
    assert "music/set0/clip0.flac -> music/set0/clip0.flac.pac" in captured.out
    assert cli(src, out, "-d", "1", "-j", "1", "--include", "speech/*", "--exclude", "*3.flac") == 0
    assert sorted(pac_tree(out)) == ["speech/set0/clip1.pac"]


def test_a_foreign_non_empty_output_directory_is_refused_without_force(tmp_path, tree, capsys):
    src, files = tree
    out = tmp_path / "out"
    (out / "music" / "set0").mkdir(parents=True)
    mine = out / "music" / "set0" / "clip0.pac"
    mine.write_bytes(b"my own file")
    assert cli(src, out, "-d", "1", "-j", "1") == 1
    err = capsys.readouterr().err
    assert "not empty" in err and "--force" in err and err.count("\n") == 1
    assert mine.read_bytes() == b"my own file" and not (out / batch.MANIFEST).exists()
    assert cli(src, out, "-d", "1", "-j", "1", "--force") == 1          # broken.wav
    assert mine.read_bytes()[:4] == b"PACD"


def test_a_torn_manifest_line_is_cut_off_and_the_run_goes_on(tmp_path, tree):
    src, _ = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1", "--exclude", "broken.wav")
    with open(out / batch.MANIFEST, "ab") as f:
        f.write(b'{"type": "file", "input": "speech/se')          # a killed append
    assert cli(src, out, "-d", "1", "-j", "1", "--exclude", "broken.wav") == 0
    recs = records(out)                                            # every line parses again
    assert not [r for r in last_run(out) if r["type"] == "file"]
    assert recs[-1]["type"] == "summary" and recs[-1]["up_to_date"] == 4


def test_decode_restores_a_wav_or_flac_tree(tmp_path, tree):
    src, files = tree
    out, back = tmp_path / "out", tmp_path / "back"
    cli(src, out, "-b", "96", "-j", "1")
    assert cli(out, back, "--decode", "--format", "flac", "-j", "1") == 0
    for f in files:
        x, fs = sf.read(f, always_2d=True)
        y, rate = sf.read(back / f.relative_to(src).with_suffix(".flac"), always_2d=True)
        assert rate == fs and y.shape == x.shape
    assert {r["input"] for r in records(back, "file")} == {
        str(f.relative_to(src).with_suffix(".pac")) for f in files}
    assert cli(out, back, "--decode", "--format", "flac", "-j", "1") == 0
    assert not [r for r in last_run(back) if r["type"] == "file"]


def test_report_writes_markdown_and_histograms(tmp_path, tree, capsys):
    src, _ = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1")
    assert cli("--report", out) == 0
    md = (out / "report.md").read_text()
    assert "total DCR" in md and "broken.wav" in md and "| files | 4 |" in md
    pytest.importorskip("matplotlib")
    assert (out / "report-dcr.png").read_bytes()[:4] == b"\x89PNG"


def test_report_without_matplotlib_still_writes_markdown_and_says_why(tmp_path, tree, monkeypatch,
                                                                      capsys):
    src, _ = tree
    out = tmp_path / "out"
    cli(src, out, "-d", "1", "-j", "1")
    monkeypatch.setitem(sys.modules, "matplotlib", None)          # as if not installed
    assert cli("--report", out) == 0
    err = capsys.readouterr().err
    assert "matplotlib is not installed" in err and 'pip install "pacodec[plot]"' in err
    assert (out / "report.md").exists() and not (out / "report-dcr.png").exists()


@pytest.mark.parametrize("args,needle", [
    (["only-one-dir"], "needs IN_DIR and OUT_DIR"),
    (["{src}", "{out}", "-j", "0"], "-j needs"),
    (["{missing}", "{out}"], "not a directory"),
    (["{src}", "{src}"], "must differ"),
    (["{src}", "{out}", "-b", "1"], "bitrate"),
    (["{src}", "{out}", "--score", "nosuchmetric"], "unknown quality metric"),
    (["--report", "{missing}"], "no manifest"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, tree, capsys, args, needle):
    src, _ = tree
    fill = dict(src=src, out=tmp_path / "out", missing=tmp_path / "missing")
    assert cli(*[a.format(**fill) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
    assert not (tmp_path / "out").exists()


def test_score_records_visqol_per_file(tmp_path, rng):
    from pacodec import quality
    if not quality.available():
        pytest.skip("ViSQOL (audio-samples-qoe) is not installed; see README 'Measuring quality'")
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    t = np.arange(48000) / 48000
    sf.write(src / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 48000)
    assert cli(src, out, "-b", "64", "-j", "1", "--score", "visqol") == 0
    (r,) = records(out, "file")
    assert 3.0 < r["quality"]["visqol"] < 5.0
    assert records(out, "summary")[0]["quality_mean"]["visqol"] == r["quality"]["visqol"]


# -------------------------------------------------------------------- processes: kill, pool, Dask
def pac_cmd(*args):
    return [sys.executable, "-m", "pacodec", "batch", *[str(a) for a in args]]


def test_sigkill_half_way_then_rerun_encodes_only_the_rest(tmp_path, rng):
    src, out = tmp_path / "in", tmp_path / "out"
    n = 24
    for i in range(n):
        (src / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        sf.write(src / f"d{i % 3}" / f"f{i:02d}.wav", rng.standard_normal((44100, 2)) * .1, 44100)
    proc = subprocess.Popen(pac_cmd(src, out, "-d", "1", "-j", "2", "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    manifest = out / batch.MANIFEST
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if manifest.exists() and len(records(out, "file")) >= 3:
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        proc.kill()
    finally:
        proc.kill()
        proc.wait(30)
    first = {r["input"]: r for r in records(out, "file")}
    assert 3 <= len(first) < n and not records(out, "summary")
    stats = {k: (out / r["output"]).stat() for k, r in first.items()}
    p = subprocess.run(pac_cmd(src, out, "-d", "1", "-j", "2", "--quiet"), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    second = [r["input"] for r in last_run(out) if r["type"] == "file"]
    assert not set(second) & set(first) and len(second) + len(first) == n
    for k, st in stats.items():            # the finished outputs were not written again
        now = (out / first[k]["output"]).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert not [f for f in out.rglob("*") if "pacodec-partial" in f.name]
    assert len(pac_tree(out)) == n
    # the pool's outputs are the in-process outputs, byte for byte
    ref = tmp_path / "ref"
    batch.run_batch(src, ref, SETTINGS, jobs=1, include=["d0/*"])
    got = pac_tree(out)
    assert all(got[k] == v for k, v in pac_tree(ref).items())


def _small_tree(tmp_path, rng):
    src = tmp_path / "in"
    make_tree(src, rng, n=3, seconds=0.3)
    ref = tmp_path / "ref"
    res = batch.run_batch(src, ref, SETTINGS, jobs=1)
    assert len(res.encoded) == 3 and len(res.failed) == 1
    return src, pac_tree(ref)


def test_dask_local_cluster_gives_the_same_outputs_manifest_and_resume(tmp_path, rng):
    pytest.importorskip("dask.distributed", reason='needs pip install "pacodec[dask]"')
    src, ref = _small_tree(tmp_path, rng)
    out = tmp_path / "out"
    res = batch.run_batch(src, out, SETTINGS, dask="local:2")
    assert len(res.encoded) == 3 and [r["input"] for r in res.failed] == ["broken.wav"]
    assert pac_tree(out) == ref
    assert records(out, "run")[0]["backend"] == "dask local:2"
    assert {r["input"] for r in records(out, "file")} == {r["input"] for r in res.encoded}
    again = batch.run_batch(src, out, SETTINGS, dask="local:2")
    assert not again.encoded and len(again.skipped) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_scheduler_and_worker_processes(tmp_path, rng):
    pytest.importorskip("dask.distributed", reason='needs pip install "pacodec[dask]"')
    src, ref = _small_tree(tmp_path, rng)
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
             str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
            stderr=open(logs / "scheduler.log", "w"), cwd=tmp_path))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", addr, "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(tmp_path / "dask-worker")],
            stdout=subprocess.DEVNULL, stderr=open(logs / "worker.log", "w"), cwd=tmp_path))
        from dask.distributed import Client
        with Client(addr, timeout=120) as c:         # wait (bounded) for the worker
            c.wait_for_workers(1, timeout=300)
        out = tmp_path / "out"
        p = subprocess.run(pac_cmd(src, out, "-d", "1", "--dask", addr), capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 1, p.stderr                          # broken.wav
        assert "pacodec: failed: broken.wav" in p.stderr and "3 encoded" in p.stderr
        assert pac_tree(out) == ref
        assert {r["pid"] for r in records(out, "file")} - {os.getpid()}   # ran elsewhere
        p = subprocess.run(pac_cmd(src, out, "-d", "1", "--dask", addr), capture_output=True,
                           text=True, timeout=600)
        assert "0 encoded, 3 up to date" in p.stderr, p.stderr
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def test_unreachable_dask_scheduler_is_a_one_line_error(tmp_path, rng, capsys):
    pytest.importorskip("dask.distributed", reason='needs pip install "pacodec[dask]"')
    src = tmp_path / "in"
    make_tree(src, rng, n=1)
    import dask
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert cli(src, tmp_path / "out", "--dask", f"tcp://127.0.0.1:{_free_port()}") == 1
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and err.count("\n") == 1


def _children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d))
    return kids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and fork workers")
def test_workers_of_a_killed_run_hold_no_manifest_lock(tmp_path, rng):
    """A worker still alive after its coordinator was killed (here: stopped, so the SIGTERM it
    gets on the coordinator's death waits) must not keep the next run out of the directory: the
    manifest's lock belongs to the coordinator alone.  When the worker goes on, it ends."""
    import fcntl
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(12):
        sf.write(src / f"f{i:02d}.wav", rng.standard_normal((44100, 2)) * .1, 44100)
    proc = subprocess.Popen(pac_cmd(src, out, "-d", "1", "-j", "2", "--quiet"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not (
                (out / batch.MANIFEST).exists() and records(out, "file")):
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.01)
        workers = _children(proc.pid)
        assert workers
        for w in workers:
            os.kill(w, signal.SIGSTOP)
        proc.kill()
        proc.wait(30)
        with open(out / batch.MANIFEST, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)   # raises if a worker holds it
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    finally:
        proc.kill()
        for w in workers:
            with contextlib.suppress(OSError):
                os.kill(w, signal.SIGCONT)
    deadline = time.monotonic() + 120
    while any(os.path.exists(f"/proc/{w}") and open(f"/proc/{w}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
              for w in workers if os.path.exists(f"/proc/{w}")) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = [w for w in workers if os.path.exists(f"/proc/{w}")
             and open(f"/proc/{w}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
    assert not alive, "workers outlived their coordinator"


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_resume_removes_the_partials_a_sigkill_leaves_anywhere_in_the_tree(tmp_path, tree):
    """The state a ``kill -9`` of a run leaves, made directly: partial files nobody holds a lock
    on, in directories the resumed run has no file to write into.  The resume removes them all,
    whatever they look like -- empty and seconds old (a worker killed before its first buffer
    reached the file), or named with a pid that is alive again (reused) -- and keeps only the
    partial whose writer is alive (it holds the lock)."""
    import fcntl
    src, files = tree
    out = tmp_path / "out"
    batch.run_batch(src, out, SETTINGS, jobs=1)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.pac")}
    d1, d2 = out / "music" / "set0", out / "speech" / "set0"
    empty = d1 / f".clip0.pac.pacodec-partial-{_dead_pid()}-0123abcd"
    empty.write_bytes(b"")
    reused = d2 / f".clip1.pac.pacodec-partial-{os.getppid()}-89abcdef"
    reused.write_bytes(b"PAC" * 300)
    live = d2 / f".clip9.pac.pacodec-partial-{_dead_pid()}-00ff00ff"
    live.write_bytes(b"in progress")
    with open(live, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)    # a live writer (say, another container)
        res = batch.run_batch(src, out, SETTINGS, jobs=1)
        assert not res.encoded and len(res.skipped) == len(files) and len(res.failed) == 1
        assert sorted(f.name for f in out.rglob("*") if "pacodec-partial" in f.name) == [live.name]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pac")} == before
    batch.run_batch(src, out, SETTINGS, jobs=1)        # its writer gone: the next run removes it
    assert not [f for f in out.rglob("*") if "pacodec-partial" in f.name]
