"""``python -m pacodec.gst [--env]``: what ``pacodec gst-path`` prints.

Without options: the directory to add to ``GST_PLUGIN_PATH``.  With ``--env``: ``export`` lines
for ``GST_PLUGIN_PATH``, ``PYTHONPATH`` and ``GST_REGISTRY`` (a registry file of pacodec's own), for ``eval "$(python -m pacodec.gst --env)"``.
"""
import argparse

from . import plugin_path, shell_env


def main(argv=None):
    p = argparse.ArgumentParser(prog="pacodec gst-path", description=__doc__.split("\n\n")[1])
    p.add_argument("--env", action="store_true",
                   help="print shell export lines for GST_PLUGIN_PATH, PYTHONPATH and GST_REGISTRY")
    args = p.parse_args(argv)
    if args.env:
        print(shell_env(), end="")
    else:
        print(plugin_path())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
