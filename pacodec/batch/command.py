"""The ``pacodec batch`` command: its options and what it prints."""
from __future__ import annotations

import sys

from ..errors import PacodecError
from .report import report
from .run import run_batch, summary_line
from .score import ENV_SCORE_PATH
from .settings import decode_settings, encode_settings, encoder_kwargs

__all__ = ["add_parser", "cmd_batch"]


def add_parser(sub):
    """Register ``pacodec batch`` on the CLI's subparsers."""
    b = sub.add_parser(
        "batch", help="encode or decode a directory tree (parallel, resumable, manifest)",
        description="Mirror IN_DIR into OUT_DIR, one .pac per audio file, with a manifest "
                    "(OUT_DIR/pacodec-manifest.jsonl) that a rerun resumes from.  "
                    "'pacodec batch --report DIR' summarises a finished tree.")
    b.add_argument("paths", nargs="+", metavar="DIR", help="IN_DIR OUT_DIR (--report: DIR)")
    from ..options import add_arguments
    add_arguments(b)
    b.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="worker processes (default: all cores; 1 = in this process)")
    b.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster: tcp://HOST:PORT (workers must see the same "
                        "paths) or local:N for a LocalCluster of N processes")
    b.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="only files matching GLOB (relative path or name; repeatable)")
    b.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files matching GLOB (repeatable)")
    b.add_argument("-n", "--dry-run", action="store_true",
                   help="list what would be done; write nothing")
    b.add_argument("--verify", action="store_true",
                   help="resume only over outputs whose SHA-256 matches the manifest")
    b.add_argument("--score", metavar="METRICS",
                   help="comma-separated quality metrics per file: visqol, 2f (optional packages)")
    b.add_argument("--score-path", metavar="DIR",
                   help=f"directory with the scorer modules visqol.py / mushra2f.py "
                        f"(default ${ENV_SCORE_PATH})")
    b.add_argument("--decode", action="store_true", help="decode a .pac tree to WAV/FLAC")
    b.add_argument("--format", choices=["wav", "flac"], default="wav",
                   help="--decode output format (default wav)")
    b.add_argument("--float", action="store_true", help="--decode: 32-bit float WAV")
    b.add_argument("--strict", action="store_true",
                   help="--decode: a damaged frame fails the file instead of being concealed")
    b.add_argument("--report", action="store_true",
                   help="write OUT_DIR/report.md and DCR/quality histograms (PNG) from the "
                        "manifest (alone with one DIR: report only)")
    b.add_argument("-f", "--force", action="store_true",
                   help="write into an OUT_DIR that has files but no manifest")
    b.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    b.set_defaults(func=cmd_batch)
    return b


def _print_report(out_dir):
    md, pngs, note = report(out_dir)
    print(f"pacodec batch: report {md}" + "".join(f", {p}" for p in pngs), file=sys.stderr)
    if note:
        print(f"pacodec: warning: {note}", file=sys.stderr)


def cmd_batch(args):
    if args.report and len(args.paths) == 1:
        _print_report(args.paths[0])
        return 0
    if len(args.paths) != 2:
        raise PacodecError("batch needs IN_DIR and OUT_DIR (or --report DIR)")
    if args.jobs is not None and args.jobs < 1:
        raise PacodecError("-j needs a positive number of workers")
    if args.dask and args.jobs is not None:
        raise PacodecError("give -j or --dask, not both (Dask workers are set up on the cluster)")
    if args.decode:
        from ..options import rate_given
        if rate_given(args):
            raise PacodecError("rate options apply to encoding, not --decode")
        if args.float and args.format == "flac":
            raise PacodecError("FLAC cannot hold float samples; drop --float or use --format wav")
        settings = decode_settings(fmt=args.format, float_=args.float, strict=args.strict)
    else:
        settings = encode_settings(bitrate=args.bitrate, abr=args.abr, quality=args.quality,
                                   distance=args.distance, quantizer=args.quantizer, mu=args.mu,
                                   window=args.window, low_delay=args.low_delay)
        _check_settings(settings)
    score = [s.strip() for s in args.score.split(",") if s.strip()] if args.score else []
    in_dir, out_dir = args.paths
    tty = sys.stderr.isatty() and not args.quiet
    res = run_batch(in_dir, out_dir, settings, jobs=args.jobs, dask=args.dask,
                    include=args.include, exclude=args.exclude, dry_run=args.dry_run,
                    verify=args.verify, score=score, score_path=args.score_path,
                    force=args.force, progress=tty,
                    log=None if args.quiet else (lambda m: print(m, file=sys.stderr)))
    verb = "decode" if args.decode else "encode"
    if args.dry_run:
        for j in res.todo:
            print(f"{verb} {j['input']} -> {j['output']}")
        mb = sum(j["size"] for j in res.todo) / 1e6
        print(f"pacodec batch: would {verb} {len(res.todo)} files ({mb:.1f} MB), "
              f"{len(res.skipped)} up to date, {len(res.ignored)} other files ignored "
              f"(dry run: nothing written)", file=sys.stderr)
        return 0
    if not args.quiet:
        print(summary_line(res, args.decode), file=sys.stderr)
        print(f"pacodec batch: manifest {res.manifest}", file=sys.stderr)
    for r in res.encoded:
        if r.get("note") and not args.quiet:
            print(f"pacodec: warning: {r['input']}: {r['note']}", file=sys.stderr)
    for r in res.failed:
        print(f"pacodec: failed: {r['input']}: {r['error']}", file=sys.stderr)
    if args.report:
        _print_report(out_dir)
    return 0 if res.ok else 1


def _check_settings(settings):
    """Reject bad encoder parameters once, before any worker starts."""
    from ..encoder import Encoder
    Encoder(48000, 1, **encoder_kwargs(settings))
