# What quantization trades, from `minitx bench quant`.
# usage: gnuplot -e "quality='out/bench_quant.csv'; times='out/bench_quant_times.csv'; output='out/plot_quant.png'" scripts/plot_quant.gp
# Left: file size (fraction of the fp32 file) against the change in validation perplexity, one
# point per format. Then one panel per device in the times file (column 1: cpu rows, then cuda
# rows, one block each): decode (batch 1) and prompt tokens/s per format on the CPU, with the
# speedup over fp32 written on each bar; decode tokens/s and the memory floor per format on the
# GPU, with the speedup over fp32 and the share of the floor reached on each bar (its prompt
# tokens/s, far larger, are in the CSV and the report).
set datafile separator ","
set datafile columnheaders
stats times using (strcol(1) eq "cpu") nooutput
cpu_rows = int(STATS_sum)
stats times using (strcol(1) eq "cuda") nooutput
gpu_rows = int(STATS_sum)
panels = 1 + (cpu_rows > 0) + (gpu_rows > 0)

set terminal pngcairo size 700 * panels,560 font ",11" noenhanced
set output output
set grid
set multiplot layout 1,panels

set title "Size against quality"
set xlabel "file size / fp32 file size"
set ylabel "Δ perplexity vs fp32 (%)"
set xrange [0:1.35]
set key off
set offsets 0, 0, graph 0.15, graph 0.15
# q8_0's label (row 1) goes below its point, the others above: q8_0 and q4_mix often sit close.
label(f) = sprintf("%s: %.3fx, %+.3f%%", stringcolumn(1), $3, $8)
plot quality using 3:8 with points pt 7 ps 2 lc rgb "#1f77b4", \
     quality every ::0::0 using 3:8:(label(0)) with labels offset char 1.5,char 1 left font ",10", \
     quality every ::2::3 using 3:8:(label(0)) with labels offset char 1.5,char 1 left font ",10", \
     quality every ::1::1 using 3:8:(label(0)) with labels offset char 1.5,char -1 left font ",10"

unset offsets
set xrange [*:*]
set xlabel ""
set ylabel "tokens/s"
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key below
set xtics nomirror

# `every` picks a device's block of rows; $0 counts within it, so labels sit on their bars.
if (cpu_rows > 0) {
  set title (gpu_rows > 0 ? "Speed at batch 1, CPU" : "Speed at batch 1")
  last = cpu_rows - 1
  plot times every ::0::last using 11:xtic(2) title "decode (tokens/s)" lc rgb "#2ca02c", \
       times every ::0::last using 7 title "prompt (tokens/s)" lc rgb "#ff7f0e", \
       times every ::0::last using ($0 - 0.15):11:(sprintf("%.2fx", $12)) with labels offset 0,0.8 font ",10" notitle, \
       times every ::0::last using ($0 + 0.15):7:(sprintf("%.2fx", $8)) with labels offset 0,0.8 font ",10" notitle
}
if (gpu_rows > 0) {
  set title "Speed at batch 1, GPU"
  first = cpu_rows
  last = cpu_rows + gpu_rows - 1
  plot times every ::first::last using 11:xtic(2) title "decode (tokens/s)" lc rgb "#2ca02c", \
       times every ::first::last using 13 title "memory floor (tokens/s)" lc rgb "#bbbbbb", \
       times every ::first::last using ($0 - 0.15):11:(sprintf("%.2fx, %.0f%%", $12, 100 * $11 / $13)) with labels offset 0,0.8 font ",10" notitle
}
unset multiplot
