# The block-sparse study, from scripts/sparse-study-report.sh's CSV and the runs' logs.
# usage: gnuplot -e "study='out/sparse_study.csv'; dir='out/sparse-study'; output='out/plot_sparse_study.png'" scripts/plot_sparse_study.gp
# One column per model. Top: validation loss against step, dense and every pattern (same start,
# same batches). Bottom: each pattern's speed over dense — a training step, the attention's
# forward + backward, and the forward pass (inference of the same batch); GPU runs only.
set terminal pngcairo size 1500,900 font ",11" noenhanced
set output output
set datafile separator ","
models = system("awk -F, 'NR > 1 && !seen[$1]++ { printf \"%s \", $1 }' ".study)
patterns = system("awk -F, 'NR > 1 && !seen[$2]++ { printf \"%s \", $2 }' ".study)
n = words(models)
# The speed panels need the GPU profile's columns; a CPU study shows the loss curves only.
profiled = system("awk -F, 'NR > 1 && $9 != \"\" { k++ } END { print k + 0 }' ".study) + 0
set multiplot layout (profiled ? 2 : 1), n
set grid
do for [i = 1:n] {
  model = word(models, i)
  set title model." — validation loss"
  set xlabel "step"
  set ylabel "validation loss (nats/token)"
  set key top right
  set style data linespoints
  unset xtics
  set xtics
  set yrange [*:*]
  plot for [p in patterns] dir."/".model."-".p."/train_log.csv" using 1:($4 > 0 ? $4 : NaN) \
       every ::1 title p lw (p eq "dense" ? 3 : 1.5) pt 7 ps 0.6
}
do for [i = 1:(profiled ? n : 0)] {
  model = word(models, i)
  set title model." — speed over dense (×)"
  set xlabel ""
  set ylabel "× dense"
  set yrange [0:*]
  set style data histograms
  set style histogram clustered gap 1
  set style fill solid 0.8 border -1
  set boxwidth 0.9
  set key top left
  rows = "< awk -F, -v m=".model." 'NR == 1 || $1 == m' ".study
  plot rows using "train_speedup":xtic(2) title "training step" lc rgb "#1f77b4", \
       rows using "attention_fwdbwd_speedup" title "attention fwd+bwd" lc rgb "#d62728", \
       rows using "forward_speedup" title "forward (inference)" lc rgb "#2ca02c"
}
unset multiplot
