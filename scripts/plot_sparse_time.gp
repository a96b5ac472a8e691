# Block-sparse attention time against sequence length, from `make bench-sparse`.
# usage: gnuplot -e "table='out/bench_sparse.csv'; output='out/plot_sparse_time.png'" scripts/plot_sparse_time.gp
# Left the forward, right forward+backward; both axes logarithmic. One colour per pattern (dense
# causal in black, thick), one line style per implementation: minitx's kernel solid, PyTorch's
# FlexAttention on the same masks dashed, SDPA (dense causal) dotted. B·T is the same at every T,
# so a pattern whose work grows with T·W rather than T² draws a flat line. Rows of the smallest
# block size in the file are drawn (awk picks each curve's rows).
set terminal pngcairo size 1600,700 font ",11" noenhanced
set output output
set datafile separator ","

# What the file holds, in order of first appearance: patterns, implementation:pattern pairs, devices.
list(awk_program) = system(sprintf("awk -F, 'NR > 1 %s' '%s'", awk_program, table))
patterns = list("&& !seen[$1]++ { print $1 }")
# Curves grouped by pattern, so the legend puts each pattern's implementations together.
curves = list("{ if (!($1 in p)) order[p[$1] = ++n] = $1; if (!($2 in i)) name[i[$2] = ++m] = $2; has[$1, $2] = 1 } \
               END { for (a = 1; a <= n; ++a) for (b = 1; b <= m; ++b) if ((order[a], name[b]) in has) print name[b] \":\" order[a] }")
# Where the rows ran, said plainly: CPU rows alone are minitx's kernel without a GPU or peers.
devices = list("&& !seen[$3]++ { d = d (d == \"\" ? \"\" : \" and \") ($3 == \"cpu\" ? \"CPU\" : \"GPU\") } END { printf \"%s\", d }")
heads = list("{ printf \"H = %s, D = %s\", $7, $8; exit }")
where = devices eq "CPU" ? "the CPU (minitx's CPU kernel alone: no GPU, no PyTorch peers)" : "the ".devices
if (words(curves) == 0) { print sprintf("plot_sparse_time.gp: %s has no rows", table); exit status 1 }
block = int(list("{ if (m == \"\" || $4 + 0 < m) m = $4 + 0 } END { print m }"))

impl_of(c) = c[1:strstrt(c, ":") - 1]
pattern_of(c) = c[strstrt(c, ":") + 1:]
pattern_index(p) = sum [i = 1:words(patterns)] (word(patterns, i) eq p ? i : 0)
# Dense causal black; the others from a qualitative palette.
colours = "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #17becf #bcbd22"
colour(p) = p eq "causal" ? "#000000" : word(colours, (pattern_index(p) - 1) % words(colours) + 1)
dash(i) = i eq "flex" ? 2 : i eq "sdpa" ? 3 : 1
point(i) = i eq "flex" ? 6 : i eq "sdpa" ? 8 : 7
width(c) = pattern_of(c) eq "causal" ? 3 : 1.5
label(c) = impl_of(c) eq "sdpa" ? "dense causal (SDPA)" : sprintf("%s (%s)", pattern_of(c), impl_of(c))
# Curve c's rows at the chosen block, sorted by T: T, forward ms, forward+backward ms.
rows(c) = sprintf("< awk -F, -v OFS=, 'NR > 1 && $1 == \"%s\" && $2 == \"%s\" && $4 == %d { print $5, $10, $11 }' '%s' | sort -t, -n -k1,1", \
                  pattern_of(c), impl_of(c), block, table)

set logscale x 2
set logscale y 10
set grid xtics ytics mytics
set offsets graph 0.03, graph 0.03, 0, 0
set xlabel "sequence length T (tokens; B·T fixed)"
set ylabel "ms per call (median)"
# Two panels of equal size and one legend, at the right of both.
set key at screen 0.985, screen 0.9 right top vertical Left reverse samplen 3 spacing 1.1 font ",10"
set tmargin at screen 0.88
set bmargin at screen 0.1
set multiplot title sprintf("Block-sparse attention time (block %d, %s) on %s", block, heads, where) font ",14"
set title "forward"
set lmargin at screen 0.05
set rmargin at screen 0.4
plot for [c in curves] rows(c) using 1:2 with linespoints \
       lw width(c) dt dash(impl_of(c)) pt point(impl_of(c)) ps 0.8 lc rgb colour(pattern_of(c)) notitle
set title "forward + backward"
set lmargin at screen 0.46
set rmargin at screen 0.81
plot for [c in curves] rows(c) using 1:3 with linespoints \
       lw width(c) dt dash(impl_of(c)) pt point(impl_of(c)) ps 0.8 lc rgb colour(pattern_of(c)) title label(c)
unset multiplot
