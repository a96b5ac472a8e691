# Generation latency with and without the KV cache, from `minitx bench generate`.
# usage: gnuplot -e "table='out/bench.csv'; positions='out/bench_positions.csv'; output='out/plot_latencia.png'" scripts/plot_latencia.gp
# Left: the time to produce the token at each position (log scale: the cached cost is almost flat,
# the recomputed one grows with the prefix). Right: mean per-token latency over L generated
# tokens, with the standard deviation over repetitions, and the speedup.
set terminal pngcairo size 1400,560 font ",11"
set output output
set datafile separator ","
set datafile columnheaders
set key top left
set grid
set multiplot layout 1,2

set title "Latency of each generated token"
set xlabel "position"
set ylabel "ms per token"
set logscale y
set autoscale xfix  # the axis ends at the last position, not at the next round number
plot positions using 1:3 with lines lw 2 title "no cache (recompute the prefix)", \
     positions using 1:2 with lines lw 2 title "KV cache"

set title "Mean per-token latency of L generated tokens"
set autoscale x
set xlabel "generated length L"
set logscale x 2
set ylabel "ms per token"
set y2label "speedup (×)"
set y2tics
set ytics nomirror
set logscale y2
plot table using 1:4:5 with yerrorlines lw 2 title "no cache", \
     table using 1:2:3 with yerrorlines lw 2 title "KV cache", \
     table using 1:8 axes x1y2 with linespoints lw 2 dt 2 title "speedup (right axis)"
unset multiplot
