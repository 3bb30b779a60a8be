# Renders the suite's charts: cd to this directory, then `gnuplot charts.gp`.
set terminal pngcairo size 900,520 noenhanced font 'sans,10'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set key outside right top
set key autotitle columnheader
set output 'commits.png'
set title 'W1/W2: durable commits/s vs writer threads (median)'
set logscale x 2
set logscale y
set xlabel 'writer threads'
set ylabel 'commits/s'
set style data linespoints
plot for [i=2:7] 'commits.dat' using 1:i title columnheader(i) lw 2, 'commits.dat' using 1:8 title 'floor: write+fdatasync (1 thread)' with lines dt 2 lc rgb 'black'
unset logscale x
set style data histograms
set xlabel ''
set output 'reads.png'
set title 'W4: point reads/s, 1,000,000 documents (median)'
set ylabel 'reads/s'
plot 'reads.dat' using 2:xtic(1) title 'uniform 1t', '' using 3 title 'uniform 2t', '' using 4 title 'Zipf 1t', '' using 5 title 'Zipf 2t'
set output 'queries.png'
set title 'W6: query latency at 1% selectivity, ms (median, log scale)'
set ylabel 'ms per query'
set xtics rotate by -15
plot for [i=2:7] 'queries.dat' using i:xtic(1) title columnheader(i)
set xtics norotate
set output 'recovery.png'
set title 'W7: seconds to first read after SIGKILL, 1,000,000 documents (median, log scale)'
set ylabel 'seconds'
plot 'recovery.dat' using 2:xtic(1) title 'from the log', '' using 3 title 'from a checkpoint (AeroDB)'
unset logscale y
set output 'memory.png'
set title 'W9: resident bytes per document (raw document: 256 bytes)'
set ylabel 'bytes per document'
plot 'memory.dat' using 2:xtic(1) title 'after the load', '' using 3 title 'after recovery', 384 with lines dt 2 lc rgb 'black' title 'target: 1.5 x 256'
