# Every block-sparse layout's block grid, from `minitx bench attention --layout-grid`.
# usage: gnuplot -e "grid='build/sparse/layouts.dat'; output='out/plot_sparse_layouts.png'" scripts/plot_sparse_layouts.gp
# One panel per pattern (query blocks down, key blocks across), each kept block coloured by its
# kind: full, causal (the diagonal, masked inside) or global (kept for Longformer's global
# tokens); skipped blocks below the diagonal light grey, the future white. The last panel is
# the legend. The grid file holds one matrix per pattern, each after a line
# "# <pattern>: T <T>, block <block>, density <d>", which gives the panel's title.
set terminal pngcairo size 1600,860 font ",11" noenhanced
set output output

names = system(sprintf("awk '/^# /{ sub(/:$/, \"\", $2); print $2 }' '%s'", grid))
densities = system(sprintf("awk '/^# /{ print $NF }' '%s'", grid))
shape = system(sprintf("awk '/^# /{ sub(/,$/, \"\", $6); print \"T = \" $4 \" block \" $6; exit }' '%s'", grid))
n = words(names)
if (n == 0) { print sprintf("plot_sparse_layouts.gp: %s holds no layout (expected '# <pattern>: ...' lines)", grid); exit status 1 }

# One colour per cell value: -2 future, -1 skipped, 0 full, 1 causal, 2 global.
set palette defined (-2 "white", -1 "#e6e6e6", 0 "#1f77b4", 1 "#ff7f0e", 2 "#2ca02c")
set palette maxcolors 5
set cbrange [-2.5:2.5]
unset colorbox
set size ratio -1
set yrange [*:*] reverse
set autoscale fix
unset xtics
unset ytics
set border lw 0.5
set xlabel "key block"
set ylabel "query block"

cols = 4
rows = int((n + 1 + cols - 1) / cols)
set multiplot layout rows, cols title sprintf("Block-sparse layouts (%s): kept blocks by kind", shape) font ",14"
do for [i = 1:n] {
  set title sprintf("%s (density %s)", word(names, i), word(densities, i))
  plot grid index (i - 1) matrix with image pixels notitle
}

# The legend: a panel of labelled swatches only.
unset title
unset xlabel
unset ylabel
unset border
set xrange [0:1]
set yrange [0:1] noreverse
set size noratio
kind_text(k) = k == -2 ? "above the diagonal (future)" : k == -1 ? "skipped" : k == 0 ? "full block" : \
               k == 1 ? "causal (diagonal, masked inside)" : "global (Longformer's global tokens)"
set key off
plot for [k = -2:2] '+' using (0.12):(0.85 - (k + 2) * 0.17):(k) every ::0::0 with points pt 5 ps 4 lc palette notitle, \
     for [k = -2:2] '+' using (0.12):(0.85 - (k + 2) * 0.17) every ::0::0 with points pt 4 ps 4 lc rgb "#808080" notitle, \
     for [k = -2:2] '+' using (0.22):(0.85 - (k + 2) * 0.17):(kind_text(k)) every ::0::0 with labels left notitle
unset multiplot
