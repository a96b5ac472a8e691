# The report's quantization trade-off: file size (fraction of the fp32 file) against the change
# in validation perplexity, one labelled point per format (columns: format ratio dppl_pct and
# the height of the label, which minitx report alternates above and below the points).
# usage: gnuplot -e "data='quant.dat'; output='quant.svg'" scripts/report_quant_size.gp
set terminal svg size 760,380 font "sans-serif,13" noenhanced
set output output
set border 3
set tics nomirror
set grid
set key off
set xlabel "file size / fp32 file size"
set ylabel "Δ perplexity vs fp32 (%)"
set xrange [0:1.25]
set offsets 0, 0, graph 0.15, graph 0.15
plot data using 2:3 with points pt 7 ps 1.5 lc rgb "#3b7dd8", \
     data using 2:4:1 with labels offset char 1,0 left
