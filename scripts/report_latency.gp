# The report's KV-cache figure: the time to generate the token at each position, with the cache
# and when the prefix is recomputed (log scale: the cached cost is almost flat). One data index
# per device, its first line naming it ("CPU" or "GPU"), then "position cached_ms recompute_ms"
# rows; the GPU's lines are dashed, and the titles name the device only when there are two.
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
stats data using 1 nooutput
devices = STATS_blocks
on(name) = devices > 1 ? ", ".name : ""
plot for [i = 0:devices - 1] data index i using 1:3 with lines lw 2 lc rgb "#e07b28" dt i + 1 \
       title "no cache (recompute the prefix)".on(columnhead(1)), \
     for [i = 0:devices - 1] data index i using 1:2 with lines lw 2 lc rgb "#3b7dd8" dt i + 1 \
       title "KV cache".on(columnhead(1))
