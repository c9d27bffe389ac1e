# bench/plot.gp: latency percentiles per contender from one bench/run, one
# panel per scenario that ran. bench/run passes outfile, datadir
# (report.awk's .dat files: rows p50 p90 p99 p99.9, columns direct nginx
# sluice [sluice_h2], milliseconds) and panels (the .dat names to plot).
n = words(panels)
cols = (n <= 2) ? n : ((n <= 4) ? 2 : 3)
rows = int((n + cols - 1) / cols)
set terminal pngcairo size 700 * cols, 500 * rows font "sans,11"
set output outfile
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set ylabel "latency (ms, log scale)"
set key top left
set multiplot layout rows, cols title "sluice vs nginx vs direct: latency percentiles (medians of interleaved rounds)"
do for [i = 1:n] {
  p = word(panels, i)
  f = datadir."/".p.".dat"
  if (p eq "c1") { set title "1. closed loop, 1 connection (upstream answers at once)" }
  if (p eq "c64") { set title "2. closed loop, 64 connections (upstream answers at once)" }
  if (p eq "openloop") { set title "4. open loop, 5,000 req/s, upstream 1.5 s (from intended send time)" }
  if (p eq "ttft") { set title "5. streaming, 20 events (OpenAI SSE): time to first event byte" }
  if (p eq "ttft1k") { set title "7. streaming, 1,000 events (OpenAI SSE): time to first event byte" }
  if (p eq "tls_c64") {
    set title "8. TLS upstream (nginx terminator), 64 connections"
    plot f using 2:xtic(1) title "direct (HTTPS)" lc rgb "#888888", \
         '' using 3 title "nginx (h1+TLS)" lc rgb "#2b8a3e", '' using 4 title "sluice (h1+TLS)" lc rgb "#1c5fb8", \
         '' using 5 title "sluice (h2+TLS)" lc rgb "#7b3fb8"
  } else {
    plot f using 2:xtic(1) title "direct" lc rgb "#888888", \
         '' using 3 title "nginx" lc rgb "#2b8a3e", '' using 4 title "sluice" lc rgb "#1c5fb8"
  }
}
unset multiplot
