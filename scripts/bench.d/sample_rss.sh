#!/usr/bin/env bash
# Runs a command and samples its memory every 50 ms, for a memory timeline of one run:
#   SAMPLE_OUT=rss.tsv scripts/bench.d/sample_rss.sh podns serve ...
#   PODNS_PROG_WRAPPER="$PWD/scripts/bench.d/sample_rss.sh" SAMPLE_OUT=rss.tsv \
#     cargo bench -p podns --bench programming -- 10000x10:3
# Each line of $SAMPLE_OUT: seconds since start, VmHWM, RssAnon, RssFile (kB, from
# /proc/PID/status). SIGTERM/SIGINT are passed on to the command.
set -u
out=${SAMPLE_OUT:?set SAMPLE_OUT to the file to write}
"$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
: >"$out"
(
    start=$(date +%s%N)
    while [ -e "/proc/$pid/status" ]; do
        now=$(date +%s%N)
        fields=$(awk '/^(VmHWM|RssAnon|RssFile):/ { printf " %s", $2 }' "/proc/$pid/status" 2>/dev/null)
        [ -n "$fields" ] && printf '%d.%03d%s\n' $(((now - start) / 1000000000)) $((((now - start) / 1000000) % 1000)) "$fields" >>"$out"
        sleep 0.05
    done
) &
wait "$pid"
rc=$?
wait
exit "$rc"
