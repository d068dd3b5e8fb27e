#!/bin/sh
# Decode a .pac file with GStreamer: pacodecparse splits the file into frames, pacodecdec decodes
# them (gapless: the output has exactly the original length).
#
#   examples/gst_play.sh IN.pac OUT.wav      decode to a WAV file
#   examples/gst_play.sh IN.pac              play it (SINK=fakesink for no audio device)
set -eu
if [ $# -lt 1 ]; then echo "usage: $0 IN.pac [OUT.wav]" >&2; exit 2; fi
eval "$(pacodec gst-path --env 2>/dev/null || python3 -m pacodec.gst --env)"

if [ $# -ge 2 ]; then
    gst-launch-1.0 -q filesrc location="$1" ! pacodecparse ! pacodecdec \
        ! wavenc ! filesink location="$2"
    echo "wrote $2"
else
    gst-launch-1.0 -q filesrc location="$1" ! pacodecparse ! pacodecdec \
        ! audioconvert ! audioresample ! "${SINK:-autoaudiosink}"
fi
