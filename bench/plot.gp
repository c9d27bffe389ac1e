# bench/plot.gp: latency percentiles per contender from one bench/run, as a
# 2x2 PNG. bench/run passes outfile and datadir (report.awk's .dat files:
# rows p50 p90 p99 p99.9, columns direct nginx sluice, milliseconds).
set terminal pngcairo size 1400,1000 font "sans,11"
set output outfile
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set ylabel "latency (ms, log scale)"
set key top left
set multiplot layout 2,2 title "sluice vs nginx vs direct: latency percentiles (medians of interleaved rounds)"
set title "1. closed loop, 1 connection (upstream answers at once)"
plot datadir."/c1.dat" using 2:xtic(1) title "direct" lc rgb "#888888", \
     '' using 3 title "nginx" lc rgb "#2b8a3e", '' using 4 title "sluice" lc rgb "#1c5fb8"
set title "2. closed loop, 64 connections (upstream answers at once)"
plot datadir."/c64.dat" using 2:xtic(1) title "direct" lc rgb "#888888", \
     '' using 3 title "nginx" lc rgb "#2b8a3e", '' using 4 title "sluice" lc rgb "#1c5fb8"
set title "4. open loop, 5,000 req/s, upstream 1.5 s (from intended send time)"
plot datadir."/openloop.dat" using 2:xtic(1) title "direct" lc rgb "#888888", \
     '' using 3 title "nginx" lc rgb "#2b8a3e", '' using 4 title "sluice" lc rgb "#1c5fb8"
set title "5. streaming (OpenAI SSE): time to first event byte"
plot datadir."/ttft.dat" using 2:xtic(1) title "direct" lc rgb "#888888", \
     '' using 3 title "nginx" lc rgb "#2b8a3e", '' using 4 title "sluice" lc rgb "#1c5fb8"
unset multiplot
