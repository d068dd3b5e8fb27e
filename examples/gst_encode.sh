#!/bin/sh
# Encode an audio file (WAV, FLAC, ...) to .pac with GStreamer and the pacodecenc element:
#   filesrc ! decodebin ! audioconvert ! audioresample ! pacodecenc ! filesink
# audioconvert/audioresample pick a format pacodecenc takes (F32LE/S16LE, a supported rate).
#
#   examples/gst_encode.sh IN.wav OUT.pac [KBPS]
set -eu
if [ $# -lt 2 ]; then echo "usage: $0 IN.wav OUT.pac [KBPS]" >&2; exit 2; fi
# GST_PLUGIN_PATH and PYTHONPATH for the elements (GStreamer embeds the system Python)
eval "$(pacodec gst-path --env 2>/dev/null || python3 -m pacodec.gst --env)"

gst-launch-1.0 -q filesrc location="$1" ! decodebin ! audioconvert ! audioresample \
    ! pacodecenc bitrate="${3:-128}" ! filesink location="$2"
pacodec info "$2"
