#!/bin/bash
# Usage: scripts/bench-searchable.sh [QUIRE_BINARY] [N]
# Drops N single-page scans into a fresh daemon's inbox; prints when each
# document became indexed (seconds after the drop): median and last.
Q=${1:-target/release/quire}; N=${2:-24}
D=$(mktemp -d); mkdir -p $D/data/inbox $D/src
for i in $(seq 1 $N); do convert -size 2550x1400 xc:white -font DejaVu-Sans -pointsize 11 -density 300 -units PixelsPerInch $(for l in $(seq 0 9); do echo "-annotate +150+$((200+100*l)) Line_${l}_of_page_${i}:_the_ledger_records_receipts_and_invoices."; done) $D/src/p$i.png; done
QUIRE_DATA_DIR=$D/data QUIRE_WATCH_STABILITY_WINDOW=100ms $Q serve --workers 2 2>$D/log &
PID=$!; sleep 1
start=$(date +%s.%N); mv $D/src/*.png $D/data/inbox/
declare -A seen
while [ ${#seen[@]} -lt $N ]; do
  now=$(date +%s.%N)
  for id in $(QUIRE_DATA_DIR=$D/data $Q list --status indexed --json 2>/dev/null | python3 -c "import json,sys; print(' '.join(str(d['id']) for d in json.load(sys.stdin)))"); do
    [ -z "${seen[$id]}" ] && seen[$id]=$(awk "BEGIN {print $now - $start}")
  done
  sleep 0.1
done
kill -INT $PID; wait $PID 2>/dev/null
printf "%s\n" "${seen[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %.1f s, first %.1f s, last %.1f s\n", a[int((NR+1)/2)], a[1], a[NR]}'
rm -rf $D
