# Attention memory against sequence length, from `make bench-sparse` (the CSV's *_bytes columns,
# divided by B: per sequence and per layer; both axes logarithmic).
# usage: gnuplot -e "table='out/bench_sparse.csv'; output='out/plot_sparse_memory.png'" scripts/plot_sparse_memory.gp
# Left: what the forward keeps for the backward, which no pattern changes: out and lse for a
# fused kernel (ours on the GPU, SDPA, FlexAttention: the same bytes), the T×T probabilities for
# the CPU kernel. Middle: the KV cache a decoder at length T needs (a ring of the window for
# local and sinks). Right: the kept score blocks, had a kernel materialised them. The middle and
# right panels draw minitx's rows, one colour per pattern, dense causal in black; rows of the
# smallest block size in the file.
set terminal pngcairo size 1600,620 font ",11" noenhanced
set output output
set datafile separator ","

list(awk_program) = system(sprintf("awk -F, 'NR > 1 %s' '%s'", awk_program, table))
patterns = list("&& $2 ~ /^minitx/ && !seen[$1]++ { print $1 }")
impls = list("&& $2 ~ /^minitx/ && !seen[$2]++ { print $2 }")
# Where the rows ran, said plainly: CPU rows alone are minitx's kernel without a GPU or peers.
devices = list("&& !seen[$3]++ { d = d (d == \"\" ? \"\" : \" and \") ($3 == \"cpu\" ? \"CPU\" : \"GPU\") } END { printf \"%s\", d }")
heads = list("{ printf \"H = %s, D = %s\", $7, $8; exit }")
where = devices eq "CPU" ? "the CPU (minitx's CPU kernel alone: no GPU, no PyTorch peers)" : "the ".devices
if (words(patterns) == 0) { print sprintf("plot_sparse_memory.gp: %s has no rows of minitx's kernels", table); exit status 1 }
block = int(list("{ if (m == \"\" || $4 + 0 < m) m = $4 + 0 } END { print m }"))

pattern_index(p) = sum [i = 1:words(patterns)] (word(patterns, i) eq p ? i : 0)
colours = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #17becf #bcbd22"
colour(p) = p eq "causal" ? "#000000" : word(colours, (pattern_index(p) - 1) % words(colours) + 1)
width(p) = p eq "causal" ? 3 : 1.5
saved_label(i) = i eq "minitx-cpu" ? "CPU kernel: probabilities, T×T fp32" : \
                 "fused GPU kernel (minitx, SDPA, Flex): out bf16 + lse fp32"
# One pattern's rows of one implementation at the chosen block, sorted by T: T, then column
# `col` per sequence in MiB.
rows(p, i, col) = sprintf("< awk -F, -v OFS=, 'NR > 1 && $1 == \"%s\" && $2 == \"%s\" && $4 == %d { print $5, $%d / $6 / 1048576 }' '%s' | sort -t, -n -k1,1", \
                          p, i, block, col, table)
mine = word(impls, 1)

set logscale x 2
set logscale y 10
set format y "%g"
set grid xtics ytics mytics
set offsets graph 0.03, graph 0.03, 0, 0
set xlabel "sequence length T (tokens)"
set tmargin at screen 0.86
set bmargin at screen 0.11
set multiplot title sprintf("Attention memory per sequence and layer (block %d, %s) on %s", block, heads, where) font ",14"

set title "saved for the backward"
set ylabel "MiB"
set key top left Left reverse font ",9" samplen 2
set lmargin at screen 0.045
set rmargin at screen 0.3
plot for [i in impls] rows("causal", i, 14) using 1:2 with linespoints lw 2 pt 7 ps 0.8 title saved_label(i)

set key at screen 0.99, screen 0.86 right top vertical Left reverse samplen 3 spacing 1.1 font ",10"
set title sprintf("KV cache for decoding at length T (%s)", mine)
set ylabel ""
set lmargin at screen 0.345
set rmargin at screen 0.6
# Last to first, so dense causal is drawn over the patterns whose cache is as large as its own.
n = words(patterns)
plot for [k = n:1:-1] rows(word(patterns, k), mine, 15) using 1:2 with linespoints lw width(word(patterns, k)) pt 7 ps 0.8 \
       lc rgb colour(word(patterns, k)) notitle

set title "score blocks, if materialised (fp32)"
set lmargin at screen 0.645
set rmargin at screen 0.9
plot for [p in patterns] rows(p, mine, 16) using 1:2 with linespoints lw width(p) pt 7 ps 0.8 lc rgb colour(p) title p
unset multiplot
