# The report's KV-cache figure: the time to generate the token at each position, with the cache
# and when the prefix is recomputed (log scale: the cached cost is almost flat).
# usage: gnuplot -e "data='latency.dat'; output='latency.svg'" scripts/report_latency.gp
set terminal svg size 760,380 font "sans-serif,13" noenhanced
set output output
set border 3
set tics nomirror
set grid
set key top left
set xlabel "position of the generated token"
set ylabel "ms per token"
set logscale y
set autoscale xfix
plot data using 1:3 with lines lw 2 lc rgb "#e07b28" title "no cache (recompute the prefix)", \
     data using 1:2 with lines lw 2 lc rgb "#3b7dd8" title "KV cache"
