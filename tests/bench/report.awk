# report.awk - the report of tests/bench/run.sh: reads the workloads
# (name, malloc/free pairs, command; tab separated) then the results (one
# line per run: workload tool round status wall_s rss_kb out_bytes cycle)
# and prints a table per workload and the targets. Medians over the
# successful runs; a tool with any failed run shows FAILED. Exits 1 if a
# workload was missing or failed bare.
#
# Besides the ratio of the medians, "paired" is the median of the ratios
# of each run to the bare run of its own cycle (the same pass over the
# tools, seconds apart). This machine's speed drifts between states that
# differ by a third (a neighbour on the host); a ratio of medians can
# compare a tool's runs in one state with bare runs in the other, a paired
# ratio mostly compares runs made in the same state. The targets are
# judged on the paired ratios, and show the ratio of medians beside them.
# Variables: rounds, repeat (runs per round of the workloads with pairs, but
# heaptrack's), tools (space separated, bare first), missing (count of
# workloads that could not run at all).

function median(list,    v, n, i, j, x) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) {	# insertion sort: n is the run count
		x = v[i] + 0
		for (j = i - 1; j >= 1 && v[j] + 0 > x; j--)
			v[j + 1] = v[j]
		v[j + 1] = x
	}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function human(b) {
	if (b < 0) return "-"
	if (b < 1024) return sprintf("%d B", b)
	if (b < 1048576) return sprintf("%.1f KiB", b / 1024)
	return sprintf("%.1f MiB", b / 1048576)
}
function label(t) {
	return t == "memprof-noleak" ? "memprof --leak-check=no" : t
}
function verdict(ok) { return ok ? "PASS" : "MISS" }
FNR == NR {
	split($0, f, "\t")
	nw++; wname[nw] = f[1]; wpairs[f[1]] = f[2]; wcmd[f[1]] = f[3]
	next
}
{
	k = $1 SUBSEP $2
	if ($4 != 0) { fails[k]++; status[k] = $4; next }
	runs[k]++; wall[k] = wall[k] " " $5
	c = $1 SUBSEP $3 SUBSEP $8
	cwall[c, $2] = $5; cycles[c] = $1
	if ($6 >= 0) rss[k] = rss[k] " " $6
	if ($7 >= 0) size[k] = size[k] " " $7
}
END {
	for (c in cycles) {
		if (!((c, "bare") in cwall) || cwall[c, "bare"] <= 0)
			continue
		for (kc in cwall) {
			split(kc, q, SUBSEP)
			if (q[1] SUBSEP q[2] SUBSEP q[3] != c)
				continue
			k = q[1] SUBSEP q[4]
			if (!fails[k])
				pr[k] = pr[k] " " cwall[kc] / cwall[c, "bare"]
		}
	}
	nt = split(tools, tool, " ")
	for (j = 1; j <= nt; j++)
		has_ht += tool[j] == "heaptrack"
	printf "\nmedians of %d rounds (the churns: %d runs a round, heaptrack 1). " \
		"overhead: tool minus bare;\nof ht's: that overhead over " \
		"heaptrack's; RSS: peak of the program and the tool;\nns/pair: " \
		"bare time, or the overhead, per malloc/free pair\n", rounds, repeat
	for (i = 1; i <= nw; i++) {
		w = wname[i]
		printf "\n== %s: %s", w, wcmd[w]
		if (wpairs[w] > 0) printf " (%d malloc/free pairs)", wpairs[w]
		printf "\n%-24s %8s %7s %7s %10s %9s %8s %10s", "tool", "wall s",
			"x bare", "paired", "overhead s", "of ht's", "RSS MB", "output"
		if (wpairs[w] > 0) printf " %9s", "ns/pair"
		printf "\n"
		for (j = 1; j <= nt; j++) {
			k = w SUBSEP tool[j]
			ok[k] = !fails[k] && runs[k] > 0
			if (ok[k]) med[k] = median(wall[k])
			if (ok[k] && pr[k] != "") pmed[k] = median(pr[k])
		}
		b = w SUBSEP "bare"; h = w SUBSEP "heaptrack"
		hover = ok[h] && ok[b] ? med[h] - med[b] : ""
		for (j = 1; j <= nt; j++) {
			k = w SUBSEP tool[j]
			if (!ok[k]) {
				printf "%-24s FAILED (status %d in %d of %d runs)\n",
					label(tool[j]), status[k], fails[k], fails[k] + runs[k]
				continue
			}
			printf "%-24s %8.3f", label(tool[j]), med[k]
			if (!ok[b]) { printf "\n"; continue }
			over[k] = med[k] - med[b]
			printf " %6.2fx", med[k] / med[b]
			printf " %6s", (k in pmed) ? sprintf("%.2fx", pmed[k]) : "-"
			if (tool[j] == "bare") printf " %10s %9s", "-", "-"
			else if (hover > 0) printf " %10.3f %9.2f", over[k], over[k] / hover
			else printf " %10.3f %9s", over[k], "-"
			printf " %8s", rss[k] == "" ? "n/a" : sprintf("%.1f", median(rss[k]) / 1024)
			printf " %10s", size[k] == "" ? "-" : human(median(size[k]))
			if (wpairs[w] > 0)
				printf " %9s", tool[j] == "bare" ? \
					sprintf("%.1f", med[k] * 1e9 / wpairs[w]) : \
					sprintf("%.1f", over[k] * 1e9 / wpairs[w])
			printf "\n"
		}
	}

	m = "memprof"
	printf "\n== targets (informational; memprof with default options, leak check on;\n" \
		"   judged on paired ratios, the ratio of medians in brackets)\n"
	line = "%-10s %-36s %20s  %s\n"
	split("churn:3 churn-mt:3.5", lim, " ")
	for (i = 1; i <= 2; i++) {
		split(lim[i], p, ":"); k = p[1] SUBSEP m; b = p[1] SUBSEP "bare"
		if (!((p[1], "bare") in ok)) continue
		if (ok[k] && ok[b] && (k in pmed))
			printf line, p[1], "memprof <= " p[2] "x bare",
				sprintf("%.2fx (%.2fx)", pmed[k], med[k] / med[b]),
				verdict(pmed[k] <= p[2])
		else
			printf line, p[1], "memprof <= " p[2] "x bare", "FAILED", "MISS"
	}
	k = "churn" SUBSEP "memprof-sampled"; b = "churn" SUBSEP "bare"
	if (("churn", "bare") in ok && ok[k] && ok[b] && (k in pmed))
		printf line, "churn", "--sample-rate 512K <= 1.1x bare",
			sprintf("%.2fx (%.2fx)", pmed[k], med[k] / med[b]),
			verdict(pmed[k] <= 1.1)
	for (i = 1; i <= nw; i++) {
		w = wname[i]; k = w SUBSEP m; b = w SUBSEP "bare"; h = w SUBSEP "heaptrack"
		what = "overhead <= 0.20 of heaptrack's"
		if (!has_ht)
			printf line, w, what, "-", "n/a (no heaptrack)"
		else if (!ok[k] || !ok[b] || !(k in pmed))
			printf line, w, what, "FAILED", "MISS"
		else if (!ok[h] || !(h in pmed))
			printf line, w, what, "-", "PASS (heaptrack FAILED)"
		else if (pmed[h] <= 1 || med[h] - med[b] <= 0)
			printf line, w, what, "-", "n/a (no heaptrack overhead)"
		else {
			x = (pmed[k] - 1) / (pmed[h] - 1)
			printf line, w, what, sprintf("%.2f (%.2f)", x,
				(med[k] - med[b]) / (med[h] - med[b])), verdict(x <= 0.2)
		}
	}
	done = 0
	for (i = 1; i <= nw; i++)
		done += ok[wname[i] SUBSEP m] && ok[wname[i] SUBSEP "memprof-noleak"]
	printf line, "all", "every workload completes under memprof",
		sprintf("%d/%d", done, nw + missing), verdict(done == nw + missing)
	bad = missing
	for (i = 1; i <= nw; i++)
		if (!ok[wname[i] SUBSEP "bare"]) {
			printf "bench: %s fails without any tool\n", wname[i]
			bad = 1
		}
	exit bad
}
