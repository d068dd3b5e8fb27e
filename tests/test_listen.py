"""``pacodec listen``: the page and its files, checked as a browser would load them (every
``src``/``href`` of the page exists and decodes), and its refusals (one line, nothing written)."""
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from urllib.parse import unquote

import numpy as np
import pytest
import soundfile as sf

import pacodec

TIMEOUT = 600


def run(*args):
    return subprocess.run([sys.executable, "-m", "pacodec", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT)


class Page(HTMLParser):
    """The audio sources, links and table rows of the page."""

    def __init__(self):
        super().__init__()
        self.audio, self.links, self.rows, self._row = [], [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "audio":
            self.audio.append(a["src"])
        elif tag == "a":
            self.links.append(a["href"])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("listen")
    x, fs = sf.read(os.path.join(os.path.dirname(pacodec.__file__), "data", "piano.flac"),
                    always_2d=True)
    sf.write(d / "song.wav", x, fs, subtype="PCM_16")
    return d / "song.wav", x, fs


def test_listen_writes_a_page_whose_every_file_exists_and_decodes(tmp_path, song):
    src, x, fs = song
    out = tmp_path / "page"
    p = run("listen", src, "-b", 48, "-d", 4, "--start", 0.5, "--duration", 1.5, "-o", out)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    page = Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    n = int(round(1.5 * fs))
    assert [unquote(s) for s in page.audio] == ["original.flac", "b48.flac", "d4.flac"]
    for ref in set(page.audio + page.links):
        path = out / unquote(ref)
        assert path.is_file(), ref
        if ref.endswith(".flac"):
            y, rate = sf.read(path, always_2d=True)
        else:
            y, rate = pacodec.read(str(path))
        assert rate == fs and y.shape == (n, x.shape[1]), ref
    orig, _ = sf.read(out / "original.flac", always_2d=True)
    start = int(round(0.5 * fs))
    assert np.abs(orig - x[start:start + n]).max() < 1e-4        # the excerpt, 16-bit
    # each version's row: its option, the actual bitrate, size and DCR of its .pac
    rows = {r[0].split(" (")[0]: r for r in page.rows[1:]}
    for label, stem in (("-b 48", "b48"), ("-d 4", "d4")):
        info = json.loads(run("info", "--json", out / f"{stem}.pac").stdout)
        row = rows[label]
        assert row[2] == f"{info['bitrate_kbps']:.1f} kbit/s"
        assert row[3] == f"{info['file_bytes']} bytes"
        assert row[4] == f"{100 * info['dcr']:.2f} %"
    assert rows["original"][3] == f"{n * x.shape[1] * 2} bytes (PCM)"
    # rerun: nothing overwritten without --force
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    p = run("listen", src, "-b", 64, "-o", out)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "--force" in p.stderr
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
    p = run("listen", src, "-b", 64, "--duration", 1, "-o", out, "--force", "--quiet")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert (out / "b64.flac").is_file() and "b64.flac" in (out / "index.html").read_text()


@pytest.mark.parametrize("args,message", [
    (["missing.wav"], "missing.wav: no such file"),
    (["{src}", "-b", "1"], "kbit/s"),
    (["{src}", "-q", "20"], "quality"),
    (["{src}", "--start", "99"], "past the end"),
    (["{src}", "--start", "x"], "bad time"),
    (["{src}", "-o", "{file}"], "not a directory"),
])
def test_listen_refusals_are_one_line_and_write_nothing(tmp_path, song, args, message):
    src = song[0]
    (tmp_path / "afile").write_text("x")
    args = [a.format(src=src, file=tmp_path / "afile") for a in args]
    if "-o" not in args:
        args += ["-o", tmp_path / "page"]
    p = run("listen", *args)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pacodec: error:") and message in lines[0], p.stderr
    assert not (tmp_path / "page").exists()


CHROMIUM = next((c for c in ("chromium", "chromium-browser", "google-chrome")
                 if __import__("shutil").which(c)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_a_browser_plays_every_version_of_the_page(tmp_path, song):
    """Headless Chromium loads each player's source from the page's folder (file://, no server)
    and reports its duration: every file decodes in a browser, at the excerpt's length."""
    src, x, fs = song
    out = tmp_path / "page"
    p = run("listen", src, "-b", 64, "-q", 5, "--duration", 2, "-o", out, "--quiet")
    assert p.returncode == 0, p.stderr
    page = Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    probe = out / "_probe.html"        # beside the page, so its relative sources resolve alike
    probe.write_text(
        "<!DOCTYPE html><html><body><pre id=out></pre><script>"
        f"const srcs={json.dumps(page.audio)};let left=srcs.length;"
        "const out=document.getElementById('out');"
        "for(const s of srcs){const a=new Audio();a.preload='auto';"
        "const done=t=>{out.textContent+=s+' '+t+'\\n';if(--left==0)document.title='done';};"
        "a.addEventListener('loadedmetadata',()=>done(a.duration.toFixed(3)));"
        "a.addEventListener('error',()=>done('ERROR'));a.src=s;}"
        "</script></body></html>")

    def dom(url):
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--allow-file-access-from-files", "--virtual-time-budget=20000",
                            "--dump-dom", url], capture_output=True, text=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout

    text = dom(probe.as_uri())
    results = dict(line.split(" ", 1) for line in
                   text.split('<pre id="out">', 1)[1].split("</pre>", 1)[0].splitlines())
    assert set(results) == set(page.audio) and len(page.audio) == 3
    for s, duration in results.items():
        assert duration == f"{2.0:.3f}", (s, duration)
    # the page itself: its players are there once the browser has run its script
    assert dom((out / "index.html").as_uri()).count("<audio") == 3
