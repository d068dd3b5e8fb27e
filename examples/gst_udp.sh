#!/bin/sh
# Stream over UDP between two gst-launch-1.0 processes on 127.0.0.1.
#
#   examples/gst_udp.sh OUT.wav [IN.wav] [PORT]
#
# Packets are pacodec's own (pacodecpay/pacodecdepay, FORMAT.md section 9: one frame per
# datagram with a 32-bit frame number and a sample timestamp) -- the same datagrams as
# `pacodec send` / `pacodec receive`, so either end can be the pacodec CLI instead.  The
# configuration travels in-band, so the receiver may start late: it begins at the next config
# frame (at most a second away).  pacodecdec conceals lost frames.  The receiver stops when the
# sender's end-of-stream frame arrives (stop-at-end=true), or after 60 s.
set -eu
if [ $# -lt 1 ]; then echo "usage: $0 OUT.wav [IN.wav] [PORT]" >&2; exit 2; fi
eval "$(pacodec gst-path --env 2>/dev/null || python3 -m pacodec.gst --env)"
out=$1 in=${2:-} port=${3:-5004}

# receiver (in the background): UDP -> frames -> PCM -> WAV
timeout -s INT 60 gst-launch-1.0 -q -e udpsrc address=127.0.0.1 port="$port" \
    caps=application/x-pacodec-packet ! pacodecdepay stop-at-end=true ! pacodecdec \
    ! wavenc ! filesink location="$out" &
receiver=$!
sleep 2     # let it bind the port (a later start only skips the first second)

# sender: audio -> low-delay frames -> UDP, paced in real time by udpsink (sync=true)
if [ -n "$in" ]; then
    gst-launch-1.0 -q filesrc location="$in" ! decodebin ! audioconvert ! audioresample \
        ! pacodecenc low-delay=true bitrate=96 ! pacodecpay ! udpsink host=127.0.0.1 port="$port"
else
    gst-launch-1.0 -q audiotestsrc num-buffers=150 samplesperbuffer=960 \
        ! audio/x-raw,rate=48000,channels=2 \
        ! pacodecenc low-delay=true bitrate=96 ! pacodecpay ! udpsink host=127.0.0.1 port="$port"
fi
wait "$receiver"
echo "received into $out"
