#!/bin/sh
# screenshot.sh - regenerates docs/report.png: the `memprof report` page of
# the demo (tests/helpers/demo.c), drawn by headless Chromium and checked by
# check_report.py on the way.
#
# Usage: tests/report/screenshot.sh [BUILD_DIR]   (default build; run
# 'make all helpers' first)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
b="$top/${1:-build}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Run from the helpers' directory so that the page names './demo'.
cd "$b/helpers"
"$b/memprof" record -q -o "$tmp/run.memprof" -- ./demo >/dev/null
"$b/memprof" report -q -o "$tmp/run.html" "$tmp/run.memprof"
mkdir -p "$top/docs"
python3 "$top/tests/report/check_report.py" \
	--screenshot "$top/docs/report.png" --window-size 1280,2000 \
	"$tmp/run.html" live:fill_cache cycles:leak_cycle
echo "wrote docs/report.png ($(wc -c <"$top/docs/report.png") bytes)"
