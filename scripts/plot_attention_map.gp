# Attention heatmaps from `minitx attention-map` CSVs: one row of panels per file (dense and each
# pattern on the same text), one panel per head (the first `heads`), query down, key across,
# the tokens as tick labels. The colour is √p, so that small weights show.
# usage: gnuplot -e "files='a.csv b.csv'; titles='dense local'; heads=4; output='out/plot_attention_map.png'" scripts/plot_attention_map.gp
set terminal pngcairo size 420 * heads + 80, 420 * words(files) + 40 font ",8" noenhanced
set output output
set datafile separator ","
set multiplot layout words(files), heads
set palette defined (0 "#ffffff", 0.15 "#c6dbef", 0.4 "#6baed6", 0.7 "#2171b5", 1 "#08306b")
set cbrange [0:1]
unset colorbox
set size ratio -1
set yrange [*:*] reverse
set xtics rotate by 90 right font ",6"
set ytics font ",6"
set tics scale 0
do for [i = 1:words(files)] {
  f = word(files, i)
  last = system("awk -F, 'NR > 1 && $2 > m { m = $2 } END { print m + 0 }' ".f) + 0
  do for [h = 0:heads - 1] {
    set title word(titles, i)." — head ".h
    # The full square (image needs every cell): keys past the query are 0.
    rows = "< awk -F, -v h=".h." -v n=".last." 'NR > 1 && $1 == h { p[$2, $3] = $6 } END { for (q = 0; q <= n; ++q) for (k = 0; k <= n; ++k) print h \",\" q \",\" k \",,,\" ((q, k) in p ? p[q, k] : 0) }' ".f
    # Every token's label up to 48 tokens, else every eighth: the rest would overlap.
    tics = "< awk -F, -v h=".h." -v q=".last." 'NR > 1 && $1 == h && $2 == q && (q < 48 || $3 % 8 == 0)' ".f
    set xrange [-0.5:last + 0.5]
    set yrange [last + 0.5:-0.5]
    plot rows using 3:2:(sqrt($6)) with image notitle, \
         tics using 3:(NaN):xtic(5) notitle, \
         tics using (NaN):3:ytic(5) notitle
  }
}
unset multiplot
