# The report's quantization speed: decode and prompt tokens/s per format at batch 1
# (columns: format decode_tok_s prompt_tok_s).
# usage: gnuplot -e "data='speed.dat'; output='speed.svg'" scripts/report_quant_speed.gp
set terminal svg size 760,380 font "sans-serif,13" noenhanced
set output output
set border 3
set tics nomirror
set grid ytics
set key top left
set ylabel "tokens/s"
set yrange [0:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 noborder
set boxwidth 0.9
plot data using 2:xtic(1) title "decode" lc rgb "#3b7dd8", \
     data using 3 title "prompt" lc rgb "#e07b28"
