# The report's loss figure (minitx report writes `data`: index 0 step/train loss, index 1
# step/validation loss). Black becomes the page's text colour when inlined, so the axes and
# labels follow light and dark mode; the line colours read on either background.
# usage: gnuplot -e "data='loss.dat'; output='loss.svg'" scripts/report_loss.gp
set terminal svg size 760,380 font "sans-serif,13" noenhanced
set output output
set border 3
set tics nomirror
set grid
set key top right
set xlabel "training step"
set ylabel "loss (nats/token)"
set autoscale xfix
plot data index 0 using 1:2 with lines lw 2 lc rgb "#3b7dd8" title "train", \
     data index 1 using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb "#e07b28" title "validation"
