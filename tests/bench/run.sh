#!/usr/bin/env bash
#
# run.sh - the driver of 'make bench': times allocation-heavy workloads bare,
# under memprof (with and without the exit leak check) and under heaptrack,
# and prints medians, ratios to bare, peak RSS, output size and the cost per
# malloc/free pair. Informational: the targets are printed, not enforced.
#
# Usage: tests/bench/run.sh [BUILD_DIR]   (default build; run from the top
# of the tree after 'make all helpers').
# Environment: BENCH_ROUNDS (default 5) rounds, each running every workload
# under every tool in turn; BENCH_REPEAT (default 3) runs per round of the
# short workloads (the churns) under every tool but heaptrack, whose few
# tenths of a second vary by as much as the margins of their targets on a
# shared machine; BENCH_TIMEOUT (default 300) seconds before a run
# counts as failed; BENCH_HEAPTRACK=no leaves heaptrack out. Missing
# sqlite3, heaptrack or /usr/bin/time are installed with apt-get when root.
# The raw figures of the last run stay in BUILD_DIR/bench.results.
#
# Exit status: 0, or 1 if a workload cannot run at all or fails bare. A tool
# that fails on a workload is reported as FAILED, not as an error here.

set -u
export LC_ALL=C

B=${1:-build}
ROUNDS=${BENCH_ROUNDS:-5}
REPEAT=${BENCH_REPEAT:-3}
TIMEOUT=${BENCH_TIMEOUT:-300}
HERE=$(cd "$(dirname "$0")" && pwd)

# Sizes: the churns run a few tenths of a second bare on a 2-core machine;
# the tree is the issue's (3 x 2M nodes, about 1 s bare). The whole bench
# takes about 5 minutes with heaptrack.
CHURN_PAIRS=12000000
TREE_NODES=2000000

die() {
	echo "bench: $*" >&2
	exit 1
}

if [ ! -x "$B/memprof" ] || [ ! -f "$B/libmemprof.so" ]; then
	die "no $B/memprof or $B/libmemprof.so; run 'make all helpers' first"
fi
for h in bench_churn bench_churn_mt bench_tree; do
	[ -x "$B/helpers/$h" ] || die "no $B/helpers/$h; run 'make helpers' first"
done
case $ROUNDS in
'' | *[!0-9]* | 0) die "BENCH_ROUNDS must be a positive number" ;;
esac
case $REPEAT in
'' | *[!0-9]* | 0) die "BENCH_REPEAT must be a positive number" ;;
esac

is_root() { [ "$(id -u)" = 0 ]; }

# apt_install PKG: install PKG quietly when root; refreshes the package
# lists once if the first attempt fails (a fresh container has none).
apt_install() {
	is_root && command -v apt-get >/dev/null || return 1
	echo "bench: installing $1" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq "$1" >/dev/null 2>&1 && return 0
	apt-get update -qq >/dev/null 2>&1 &&
		apt-get install -y -qq "$1" >/dev/null 2>&1
}

# Peak RSS needs /usr/bin/time (Debian package 'time'); without it the RSS
# column shows n/a and wall time still comes from bash.
TIME_BIN=/usr/bin/time
if [ ! -x $TIME_BIN ]; then
	apt_install time
	[ -x $TIME_BIN ] || {
		TIME_BIN=
		echo "bench: /usr/bin/time not installed, peak RSS not measured"
	}
fi

SQLITE=sqlite3
if ! command -v sqlite3 >/dev/null; then
	apt_install sqlite3
	command -v sqlite3 >/dev/null || {
		SQLITE=
		echo "sqlite3: not installed, skipped (apt-get install sqlite3)"
	}
fi

HEAPTRACK=heaptrack
if [ "${BENCH_HEAPTRACK:-yes}" = no ]; then
	HEAPTRACK=
	echo "heaptrack: left out (BENCH_HEAPTRACK=no)"
elif ! command -v heaptrack >/dev/null; then
	apt_install heaptrack
	command -v heaptrack >/dev/null || {
		HEAPTRACK=
		echo "heaptrack: not installed, skipped"
	}
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memprof-bench.XXXXXX") || die "cannot make a temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Workloads: name, stdin, malloc/free pairs (0: no ns/pair column), runs
# per round; the command is set by workload_cmd.
WL_NAME=(churn churn-mt tree)
WL_IN=(/dev/null /dev/null /dev/null)
WL_PAIRS=("$CHURN_PAIRS" "$CHURN_PAIRS" 0)
WL_REPEAT=("$REPEAT" "$REPEAT" 1)
missing=0
if [ -n "$SQLITE" ]; then
	WL_NAME+=(sqlite3)
	WL_IN+=("$HERE/bench.sql")
	WL_PAIRS+=(0)
	WL_REPEAT+=(1)
else
	missing=1
fi

# workload_cmd W: sets the array wcmd to workload W's command.
workload_cmd() {
	case ${WL_NAME[$1]} in
	churn) wcmd=("$B/helpers/bench_churn" "$CHURN_PAIRS") ;;
	churn-mt) wcmd=("$B/helpers/bench_churn_mt" "$CHURN_PAIRS") ;;
	tree) wcmd=("$B/helpers/bench_tree" "$TREE_NODES") ;;
	sqlite3) wcmd=("$SQLITE" :memory:) ;;
	esac
}

TOOLS=(bare memprof-noleak memprof memprof-sampled)
[ -n "$HEAPTRACK" ] && TOOLS+=(heaptrack)

# tool_cmd TOOL: sets the array tcmd to the words put before a workload.
tool_cmd() {
	case $1 in
	bare) tcmd=() ;;
	memprof-noleak) tcmd=("$B/memprof" record -q --leak-check=no -o "$tmp/out.memprof" --) ;;
	memprof) tcmd=("$B/memprof" record -q -o "$tmp/out.memprof" --) ;;
	memprof-sampled) tcmd=("$B/memprof" record -q --sample-rate 512K -o "$tmp/out.memprof" --) ;;
	heaptrack) tcmd=(heaptrack -o "$tmp/out.ht") ;;
	esac
}

# run_one WORKLOAD TOOL ROUND CYCLE: runs once, appends "workload tool round
# status wall_s rss_kb out_bytes cycle" to $tmp/results. A cycle is one
# pass over the tools within a round (the churns make REPEAT of them).
run_one() {
	local w=$1 tool=$2 round=$3 cycle=$4 status start end rss size
	local -a tcmd wcmd cmd
	tool_cmd "$tool"
	workload_cmd "$w"
	cmd=("${tcmd[@]}" "${wcmd[@]}")
	rm -f "$tmp"/out.* "$tmp/rss"
	start=$EPOCHREALTIME
	if [ -n "$TIME_BIN" ]; then
		timeout -k 5 "$TIMEOUT" $TIME_BIN -f %M -o "$tmp/rss" "${cmd[@]}" \
			<"${WL_IN[$w]}" >/dev/null 2>"$tmp/stderr"
	else
		timeout -k 5 "$TIMEOUT" "${cmd[@]}" \
			<"${WL_IN[$w]}" >/dev/null 2>"$tmp/stderr"
	fi
	status=$?
	end=$EPOCHREALTIME
	# /usr/bin/time -o writes "Command exited with non-zero status N"
	# before the figure when the program fails: keep the last line.
	rss=$(tail -n 1 "$tmp/rss" 2>/dev/null)
	case $rss in '' | *[!0-9]*) rss=-1 ;; esac
	size=$(cat "$tmp"/out.* 2>/dev/null | wc -c)
	[ -n "$(ls "$tmp"/out.* 2>/dev/null)" ] || size=-1
	if [ $status -ne 0 ]; then
		echo "  ${WL_NAME[$w]} under $tool failed with status $status:" \
			"$(grep -v '^$' "$tmp/stderr" | tail -n 1)" >&2
	fi
	echo "${WL_NAME[$w]} $tool $round $status $(awk -v s="$start" -v e="$end" \
		'BEGIN { printf "%.4f", e - s }') $rss $size $cycle" >>"$tmp/results"
}

peer="no heaptrack"
[ -n "$HEAPTRACK" ] && peer=$(heaptrack --version 2>/dev/null | head -n 1)
echo "memprof bench: $ROUNDS rounds of ${#WL_NAME[@]} workloads x ${#TOOLS[@]} tools," \
	"$REPEAT runs per round of the churns" \
	"($(nproc) CPUs; $peer; load average $(cut -d' ' -f1-3 /proc/loadavg))"
: >"$tmp/results"
# Interleaved: each round runs every workload under every tool, rotating
# which tool goes first, so drift in machine load spreads over all rows. A
# short workload's repeats each run every tool again (heaptrack once).
for ((r = 1; r <= ROUNDS; r++)); do
	echo "round $r/$ROUNDS" >&2
	for ((w = 0; w < ${#WL_NAME[@]}; w++)); do
		for ((k = 0; k < ${WL_REPEAT[$w]}; k++)); do
			for ((t = 0; t < ${#TOOLS[@]}; t++)); do
				tool=${TOOLS[(t + r + k - 1) % ${#TOOLS[@]}]}
				[ $k -gt 0 ] && [ "$tool" = heaptrack ] && continue
				run_one $w "$tool" $r $k
			done
		done
	done
done

mkdir -p "$B" && cp "$tmp/results" "$B/bench.results" 2>/dev/null
# Other work on the machine skews wall times more than medians can hide.
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# The report: one table per workload, then the targets. awk reads the
# workload descriptions first (name, pairs, command), then the results.
for ((w = 0; w < ${#WL_NAME[@]}; w++)); do
	workload_cmd $w
	shown="${wcmd[*]}"
	[ "${WL_IN[$w]}" != /dev/null ] && shown+=" < ${WL_IN[$w]#"$PWD/"}"
	printf '%s\t%s\t%s\n' "${WL_NAME[$w]}" "${WL_PAIRS[$w]}" "$shown"
done >"$tmp/workloads"

awk -v rounds="$ROUNDS" -v repeat="$REPEAT" -v tools="${TOOLS[*]}" -v missing=$missing \
	-f "$HERE/report.awk" "$tmp/workloads" "$tmp/results"
