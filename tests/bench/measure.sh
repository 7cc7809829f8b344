#!/usr/bin/env bash
#
# measure.sh - the measurements of issue 6: the shim's memory per live block
# and per stack, RSS over a long churn, the analysis commands on a snapshot
# of 1M live blocks from 100k stacks, and snapshot size per block and per
# stack next to heaptrack's file. Measures and prints tables; asserts
# nothing (exit status 0 unless a program is missing).
#
# Usage: bash tests/bench/measure.sh [BUILD_DIR]   (default build; run from
# the top of the tree after 'make all helpers'). MEASURE_HEAPTRACK=no leaves
# heaptrack out. Takes a minute or two on a 2-core machine.
#
# Workloads: build/helpers/bench_stacks N K [LEAK_PCT [SIZE]] (N live blocks
# from K distinct stacks, 2*ceil(log2 K) + 5 frames each; prints its own
# VmRSS once every block is allocated) and build/helpers/bench_churn PAIRS.
# "steady" RSS is that self-reported VmRSS (the shim's tables, before the
# exit snapshot); "peak" is /usr/bin/time's max RSS, which includes the
# exit snapshot's transient buffers.

set -u
export LC_ALL=C

B=${1:-build}
die() {
	echo "measure: $*" >&2
	exit 1
}
[ -x "$B/memprof" ] && [ -f "$B/libmemprof.so" ] ||
	die "no $B/memprof or $B/libmemprof.so; run 'make all helpers' first"
for h in bench_stacks bench_churn; do
	[ -x "$B/helpers/$h" ] || die "no $B/helpers/$h; run 'make helpers' first"
done
[ -x /usr/bin/time ] || die "needs /usr/bin/time (apt-get install time)"

MP=$(realpath "$B/memprof")
SHIM=$(realpath "$B/libmemprof.so")
STACKS=$(realpath "$B/helpers/bench_stacks")
CHURN=$(realpath "$B/helpers/bench_churn")
HT=heaptrack
if [ "${MEASURE_HEAPTRACK:-yes}" = no ] || ! command -v heaptrack >/dev/null; then
	HT=
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/memprof-measure.XXXXXX") || die "no temporary directory"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# timed CMD...: runs CMD with stdout to $tmp/out; sets WALL (s) and PEAK
# (max RSS, KiB) and STEADY (the workload's own VmRSS line, KiB, or -).
timed() {
	/usr/bin/time -f '%e %M' -o "$tmp/time" "$@" >"$tmp/out" 2>"$tmp/err"
	local st=$?
	read -r WALL PEAK < <(tail -n 1 "$tmp/time")
	STEADY=$(awk '/^stacks:/ { print $9 }' "$tmp/out")
	[ -n "$STEADY" ] || STEADY=-
	[ $st -eq 0 ] || echo "measure: '$*' exited with $st: $(tail -n 1 "$tmp/err")" >&2
	return $st
}

# shim CMD...: CMD under the shim without the exit leak check, straight
# from LD_PRELOAD (env execs CMD: the preload applies to CMD only).
shim() {
	timed env MEMPROF_LEAK_CHECK=no MEMPROF_OUTPUT="$tmp/shim.memprof" \
		LD_PRELOAD="$SHIM" "$@"
}

size_of() { if [ -f "$1" ]; then stat -c %s "$1"; else echo -1; fi; }

peer="no heaptrack"
[ -n "$HT" ] && peer=$(heaptrack --version 2>/dev/null | head -n 1)
echo "memprof measure: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $peer"

# ---- sizes of the shim's structures, from its own header ----------------
if command -v "${CC:-cc}" >/dev/null; then
	cat >"$tmp/sz.c" <<-'EOF'
		#include "shim/shim_internal.h"
		#include <stdio.h>
		int main(void)
		{
			printf("%zu %zu %zu %zu\n", sizeof(struct shim_block),
			       sizeof(struct shim_trace), sizeof(struct shim_tls),
			       sizeof(struct shim_blk));
			return 0;
		}
	EOF
	if "${CC:-cc}" -std=gnu11 -D_GNU_SOURCE -Ilib -o "$tmp/sz" "$tmp/sz.c" 2>/dev/null; then
		read -r s_blk s_tr s_tls s_snap < <("$tmp/sz")
		echo
		echo "shim structures (lib/shim/shim_internal.h): live map word 4 B per 32 B" \
			"of heap, and 4 more for blocks of 64 B or more (shim_table.c)," \
			"hash table slot $s_blk B (blocks >= 2 GiB, odd addresses)," \
			"trace $s_tr B + 8 B/frame (arena, 16-byte rounded) + 8 B (its id)," \
			"per-thread state $s_tls B (one mmap, $(((s_tls + 4095) / 4096 * 4)) KiB)," \
			"snapshot block $s_snap B"
	fi
fi

# ---- (4a) shim memory per live block: N varies, K fixed -----------------
K_FIX=1000
echo
echo "(4a) shim memory per live block: bench_stacks N $K_FIX (16-byte blocks), leak check off"
printf '%9s %10s %10s %10s %12s %14s\n' N bare_MiB shim_MiB extra_MiB \
	B/block exit_peak_B/bl
base=
for n in 0 250000 500000 1000000 1500000 2000000; do
	timed "$STACKS" $n $K_FIX || continue
	bare=$STEADY
	shim "$STACKS" $n $K_FIX || continue
	extra=$((STEADY - bare))
	[ -n "$base" ] || base=$extra
	awk -v n=$n -v b=$bare -v s=$STEADY -v e=$extra -v base=$base -v pk=$PEAK 'BEGIN {
		printf "%9d %10.1f %10.1f %10.1f %12s %14s\n", n, b / 1024,
			s / 1024, e / 1024,
			n ? sprintf("%.1f", (e - base) * 1024 / n) : "-",
			n ? sprintf("%.1f", (pk - s) * 1024 / n) : "-" }'
	echo "$n $extra" >>"$tmp/fit_n"
done
awk '{ x[NR] = $1; y[NR] = $2 * 1024; sx += $1; sy += y[NR] } END {
	if (NR < 2) exit
	mx = sx / NR; my = sy / NR
	for (i = 1; i <= NR; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ^ 2 }
	printf "  least-squares slope: %.1f B per live block (fixed part %.0f KiB)\n",
		sxy / sxx, (my - sxy / sxx * mx) / 1024 }' "$tmp/fit_n"

# ---- (4b) shim memory per stack: K varies, N fixed ----------------------
N_FIX=400000
echo
echo "(4b) shim memory per stack: bench_stacks $N_FIX K (16-byte blocks), leak check off"
echo "     B/stack: (extra - extra at K=1) / (K - 1); above_10k: the same from K=10000,"
echo "     when the 2 MiB bucket array (2^18 x 8 B, touched page by page) is all in"
printf '%9s %7s %10s %10s %12s %12s %14s\n' K frames shim_MiB extra_MiB B/stack \
	above_10k expect_B/stack
base='' base10=''
for k in 1 1000 10000 100000 200000 400000; do
	timed "$STACKS" $N_FIX $k || continue
	bare=$STEADY
	shim "$STACKS" $N_FIX $k || continue
	d=$(awk '/^stacks:/ { print $7 }' "$tmp/out")
	frames=$((2 * d + 5))
	extra=$((STEADY - bare))
	[ -n "$base" ] || base=$extra
	[ $k = 10000 ] && base10=$extra
	# expect: the trace (its header, as sizeof says, 8 bytes a frame,
	# 16-byte rounded) and its id's slot.
	awk -v k=$k -v f=$frames -v s=$STEADY -v e=$extra -v base=$base \
		-v b10="$base10" -v hdr="${s_tr:-104}" 'BEGIN {
		x = hdr + 8 * f; x = int((x + 15) / 16) * 16 + 8
		printf "%9d %7d %10.1f %10.1f %12s %12s %14d\n", k, f, s / 1024, e / 1024,
			(k > 1 ? sprintf("%.1f", (e - base) * 1024 / (k - 1)) : "-"),
			(k > 10000 && b10 != "" ? sprintf("%.1f", (e - b10) * 1024 / (k - 10000)) : "-"), x }'
done

# ---- (4c) a long churn keeps RSS flat -----------------------------------
echo
echo "(4c) churn: bench_churn PAIRS (4096 slots kept, all freed before exit): max RSS"
echo "     of the program bare, under the shim without and with the exit leak check,"
echo "     and of heaptrack's processes; snap_bytes: the symbolized exit snapshot"
printf '%10s %9s %9s %9s %9s %9s %11s %11s %12s\n' pairs bare_KiB bare_s \
	noleak_KiB noleak_s leak_KiB leak_s snap_bytes heaptrack_KiB
for p in 1000000 10000000; do
	timed "$CHURN" $p || continue
	b_rss=$PEAK b_s=$WALL
	shim "$CHURN" $p || continue
	n_rss=$PEAK n_s=$WALL
	rm -f "$tmp/c.memprof"
	timed env MEMPROF_LEAK_CHECK=yes MEMPROF_OUTPUT="$tmp/c.memprof" \
		LD_PRELOAD="$SHIM" "$CHURN" $p || continue
	l_rss=$PEAK l_s=$WALL
	"$MP" symbolize "$tmp/c.memprof" >/dev/null 2>&1
	snap=$(size_of "$tmp/c.memprof")
	h_rss=-
	if [ -n "$HT" ]; then
		rm -f "$tmp"/ht.*
		timed heaptrack -o "$tmp/ht" "$CHURN" $p && h_rss=$PEAK
		echo "churn $p $snap $(size_of "$tmp/ht.zst")" >>"$tmp/sizes"
	else
		echo "churn $p $snap -1" >>"$tmp/sizes"
	fi
	printf '%10d %9d %9s %9d %9s %9d %11s %11d %12s\n' $p $b_rss $b_s $n_rss \
		$n_s $l_rss $l_s $snap $h_rss
done

# ---- (5) analysis speed on 1M live blocks from 100k stacks --------------
BIG_N=1000000 BIG_K=100000
echo
echo "(5) analysis: snapshot of bench_stacks $BIG_N $BIG_K 10 0" \
	"(sizes 16-512 B, 10% of blocks lost), leak check on"
printf '%-34s %8s %8s %10s\n' command best_s worst_s maxRSS_MiB
big=$tmp/big.memprof
# best3 LABEL CMD...: best and worst of three runs, max RSS of the best.
best3() {
	local label=$1 best='' worst='' rss=''
	shift
	for _ in 1 2 3; do
		timed "$@" || return
		if [ -z "$best" ] || awk -v a=$WALL -v b=$best 'BEGIN { exit !(a < b) }'; then
			best=$WALL rss=$PEAK
		fi
		if [ -z "$worst" ] || awk -v a=$WALL -v b=$worst 'BEGIN { exit !(a > b) }'; then
			worst=$WALL
		fi
	done
	printf '%-34s %8s %8s %10.1f\n' "$label" $best $worst "$(awk -v r=$rss 'BEGIN { print r / 1024 }')"
}
timed "$MP" record -q -o "$big" -- "$STACKS" $BIG_N $BIG_K 10 0 &&
	printf '%-34s %8s %8s %10.1f\n' "record (incl. symbolize)" $WALL - \
		"$(awk -v r=$PEAK 'BEGIN { print r / 1024 }')"
timed "$MP" record -q --no-symbols -o "$tmp/raw.memprof" -- "$STACKS" $BIG_N $BIG_K 10 0 &&
	printf '%-34s %8s %8s %10.1f\n' "record --no-symbols" $WALL - \
		"$(awk -v r=$PEAK 'BEGIN { print r / 1024 }')"
# symbolize rewrites its file: each run gets a fresh copy.
best=
for _ in 1 2 3; do
	cp "$tmp/raw.memprof" "$tmp/sym.memprof"
	timed "$MP" symbolize "$tmp/sym.memprof" || break
	if [ -z "$best" ] || awk -v a=$WALL -v b=$best 'BEGIN { exit !(a < b) }'; then
		best=$WALL rss=$PEAK
	fi
done
[ -n "$best" ] && printf '%-34s %8s %8s %10.1f\n' "symbolize (what record adds)" $best - \
	"$(awk -v r=$rss 'BEGIN { print r / 1024 }')"
if [ -f "$big" ]; then
	best3 "top" "$MP" top "$big"
	best3 "top --by traceback" "$MP" top --by traceback "$big"
	best3 "diff FILE FILE" "$MP" diff "$big" "$big"
	best3 "leaks" "$MP" leaks "$big"
	best3 "info" "$MP" info "$big"
	echo "  (target: each under 2 s; $("$MP" info "$big" | awk -F': *' '/^contents/ { print $2 }'))"
fi

# ---- (6) snapshot size per live block and per stack ---------------------
echo
echo "(6) snapshot size: memprof record (leak check on, symbolized) vs heaptrack -o"
# snap_row LABEL N K SIZE: records bench_stacks N K 0 SIZE with both tools.
snap_row() {
	local label=$1 n=$2 k=$3 size=$4 m h=-1
	rm -f "$tmp/s.memprof" "$tmp"/ht.*
	timed "$MP" record -q -o "$tmp/s.memprof" -- "$STACKS" $n $k 0 $size || return
	m=$(size_of "$tmp/s.memprof")
	cp "$tmp/s.memprof" "$tmp/s-$label-$n-$k.memprof"
	if [ -n "$HT" ] && [ "$size" != 0 ]; then
		timed heaptrack -o "$tmp/ht" "$STACKS" $n $k 0 $size && h=$(size_of "$tmp/ht.zst")
	fi
	echo "$label $n $m $h $k" >>"$tmp/sizes"
}
snap_row stacks16 250000 1000 16
snap_row stacks16 1000000 1000 16
snap_row stacks16 1000000 100000 16
snap_row stacksvar 250000 1000 0
snap_row stacksvar 1000000 1000 0
snap_row stacksvar 1000000 100000 0
printf '%-28s %13s %13s %12s %14s\n' workload memprof_bytes heaptrack_bytes \
	memprof_B/bl heaptrack_B/ev
awk '{
	if ($1 == "churn") {
		w = sprintf("bench_churn %d", $2); ev = $2 * 2; bl = 0
		m = $3; h = $4
	} else {
		w = sprintf("bench_stacks %d %d%s", $2, $5, $1 == "stacksvar" ? " 0 0" : "")
		ev = $2; bl = $2; m = $3; h = $4
		key = $1 " " $5; if (key in first) {
			# per live block: slope between two N at the same K
			slope[key] = sprintf("%.2f", ($3 - fm[key]) / ($2 - fn[key]))
			if ($4 > 0 && fh[key] > 0)
				hslope[key] = sprintf("%.3f", ($4 - fh[key]) / ($2 - fn[key]))
		} else { first[key] = 1; fn[key] = $2; fm[key] = $3; fh[key] = $4 }
		if ($2 == 1000000) { at1m[$1 " " $5] = $3; ht1m[$1 " " $5] = $4 }
	}
	printf "%-28s %13d %13s %12s %14s\n", w, m, (h > 0 ? h : "-"),
		(bl ? sprintf("%.2f", m / bl) : "-"), (h > 0 ? sprintf("%.3f", h / ev) : "-")
} END {
	for (key in slope)
		printf "  %s: %s B per extra live block (memprof)%s\n", key " stacks",
			slope[key], ((key in hslope) ? ", " hslope[key] " B per extra allocation (heaptrack)" : "")
	for (t in at1m) {
		split(t, a, " "); if (a[2] != 100000) continue
		lo = a[1] " 1000"
		if (lo in at1m)
			printf "  %s: file growth %.1f B per extra stack at 1M blocks incl. longer trace indexes (memprof)%s\n", a[1],
				(at1m[t] - at1m[lo]) / 99000,
				((ht1m[t] > 0 && ht1m[lo] > 0) ? sprintf(", %.1f (heaptrack)", (ht1m[t] - ht1m[lo]) / 99000) : "")
	}
}' "$tmp/sizes"
echo "  (heaptrack rows for varied sizes left out: heaptrack_interpret dies of" \
	"std::bad_alloc after ~18 GiB on bench_stacks N 1000 0 0)"

# Sections of the 1M-block snapshots: stored (compressed) bytes each, per
# stack for the stack sections, per block for the block sections.
if command -v python3 >/dev/null; then
	for f in "$big" "$tmp/s-stacks16-$BIG_N-$BIG_K.memprof"; do
		[ -f "$f" ] || continue
		echo
		case $f in "$big") w="bench_stacks $BIG_N $BIG_K 10 0" ;;
		*) w="bench_stacks $BIG_N $BIG_K" ;; esac
		echo "sections of the snapshot of $w ($(size_of "$f") bytes):"
		python3 - "$f" $BIG_N $BIG_K <<-'EOF'
			import struct, sys
			data = open(sys.argv[1], "rb").read()
			n, k = int(sys.argv[2]), int(sys.argv[3])
			per = {"STKS": ("stack", k), "TRCS": ("stack", k),
			       "BLKS": ("block", n), "GRPH": ("block", n)}
			print("  %-4s %10s %10s  %s" % ("tag", "stored", "raw", "stored per"))
			off = 16
			while off + 32 <= len(data):
			    tag, flags, stored, raw = struct.unpack_from("<4sIQQ", data, off)
			    t = tag.decode()
			    what, cnt = per.get(t, ("", 0))
			    each = "%.2f B/%s" % (stored / cnt, what) if cnt else ""
			    print("  %-4s %10d %10d  %s" % (t, stored, raw, each))
			    off += 32 + stored
			    if t == "END ":
			        break
		EOF
	done
fi
exit 0
