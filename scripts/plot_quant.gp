# What quantization trades, from `minitx bench quant`.
# usage: gnuplot -e "quality='out/bench_quant.csv'; times='out/bench_quant_times.csv'; output='out/plot_quant.png'" scripts/plot_quant.gp
# Left: file size (fraction of the fp32 file) against the change in validation perplexity, one
# point per format. Right: decode (batch 1) and prompt tokens/s per format, with the speedup
# over fp32 written on each bar.
set terminal pngcairo size 1400,560 font ",11" noenhanced
set output output
set datafile separator ","
set datafile columnheaders
set grid
set multiplot layout 1,2

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

set title "Speed at batch 1"
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
plot times using 9:xtic(1) title "decode (tokens/s)" lc rgb "#2ca02c", \
     times using 6 title "prompt (tokens/s)" lc rgb "#ff7f0e", \
     times using ($0 - 0.15):9:(sprintf("%.2fx", $10)) with labels offset 0,0.8 font ",10" notitle, \
     times using ($0 + 0.15):6:(sprintf("%.2fx", $7)) with labels offset 0,0.8 font ",10" notitle
unset multiplot
