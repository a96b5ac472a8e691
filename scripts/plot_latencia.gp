# Generation latency with and without the KV cache, from `minitx bench generate`.
# usage: gnuplot -e "table='out/bench.csv'; positions='out/bench_positions.csv'; output='out/plot_latencia.png'" scripts/plot_latencia.gp
# Left: the time to produce the token at each position (log scale: the cached cost is almost flat,
# the recomputed one grows with the prefix). Right: mean per-token latency over L generated
# tokens, with the standard deviation over repetitions, and the speedup. Column 1 of both files is
# the device: each device present (cpu, cuda) is a series of its own, the GPU's dashed; a row of
# another device is NaN to a series, and a line is not drawn through NaN, so each device's rows
# (one block per device) make one line.
set terminal pngcairo size 1400,560 font ",11"
set output output
set datafile separator ","
set datafile columnheaders
set key top left
set grid
set multiplot layout 1,2

# The devices in the file, in a fixed order; the titles name them only when there are two.
stats table using (strcol(1) eq "cpu") nooutput
has_cpu = STATS_sum > 0
stats table using (strcol(1) eq "cuda") nooutput
has_gpu = STATS_sum > 0
devices = (has_cpu ? "cpu " : "") . (has_gpu ? "cuda" : "")
two = words(devices) > 1
device_name(d) = d eq "cuda" ? "GPU" : "CPU"
on(d) = two ? sprintf(", %s", device_name(d)) : ""
only(d, v) = strcol(1) eq d ? v : NaN
dash(d) = d eq "cuda" ? 2 : 1  # the speedups: 3 and 4

set title "Latency of each generated token"
set xlabel "position"
set ylabel "ms per token"
set logscale y
set autoscale xfix  # the axis ends at the last position, not at the next round number
plot for [d in devices] positions using 2:(only(d, $4)) with lines lw 2 lc rgb "#e07b28" dt dash(d) \
       title "no cache (recompute the prefix)".on(d), \
     for [d in devices] positions using 2:(only(d, $3)) with lines lw 2 lc rgb "#3b7dd8" dt dash(d) \
       title "KV cache".on(d)

set title "Mean per-token latency of L generated tokens"
set autoscale x
set xlabel "generated length L"
set logscale x 2
set ylabel "ms per token"
set y2label "speedup (×)"
set y2tics
set ytics nomirror
set logscale y2
plot for [d in devices] table using 2:(only(d, $5)):6 with yerrorlines lw 2 lc rgb "#e07b28" dt dash(d) \
       title "no cache".on(d), \
     for [d in devices] table using 2:(only(d, $3)):4 with yerrorlines lw 2 lc rgb "#3b7dd8" dt dash(d) \
       title "KV cache".on(d), \
     for [d in devices] table using 2:(only(d, $9)) axes x1y2 with linespoints lw 2 lc rgb "#555555" dt dash(d) + 2 \
       title "speedup (right axis)".on(d)
unset multiplot
