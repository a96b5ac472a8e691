# The report's block-sparse figure: forward + backward time of each attention pattern against T,
# one line per pattern (each a data index headed by its name), log-log.
# usage: gnuplot -e "data='sparse.dat'; output='sparse.svg'" scripts/report_sparse_time.gp
set terminal svg size 760,420 font "sans-serif,13" noenhanced
set output output
set border 3
set tics nomirror
set grid
set key outside right top
set xlabel "sequence length T"
set ylabel "forward + backward ms"
set logscale xy
set autoscale xfix
stats data using 1 nooutput
plot for [i = 0:STATS_blocks - 1] data index i using 1:2 with linespoints lw 2 pt 7 ps 0.6 title columnheader(1)
