# bench/compiler/kv.awk: turns bench/compiler/run.sh's output into
# key=value lines for bench/run: each step's wall and CPU seconds, their
# sums (compile_*: spec to object code), and ns per lookup at the small
# (10-entry) and the big spec, for every name and for the same small
# working set of names ("set").
function step(k,    w, u, y) {
    if (match($0, /: [0-9.]+ s wall/)) { w = substr($0, RSTART + 2, RLENGTH - 9); print k "_wall_s=" w; wall += w }
    if (match($0, /[0-9.]+ s user/)) { u = substr($0, RSTART, RLENGTH - 7) }
    if (match($0, /[0-9.]+ s sys/)) { y = substr($0, RSTART, RLENGTH - 6) }
    if (u != "" && y != "") { printf "%s_cpu_s=%.2f\n", k, u + y; cpu += u + y; havecpu = 1 }
}
function ns(k) { if (match($0, /[0-9.]+ ns per lookup/)) print k "=" substr($0, RSTART, RLENGTH - 14) }
/^spec: / { split($2, a, " "); print "entries=" a[1] }
/^sluicec build: / { step("sluicec") }
/^re2c: / { step("re2c") }
/^cc -O2 table: / { step("cc_table") }
/^cc -O2 matcher: / { step("cc_matcher") }
/^lookup \(small, every name\)/ { ns("lookup_small_all_ns") }
/^lookup \(small, 13 names/ { ns("lookup_small_set_ns") }
/^lookup \(big, every name\)/ { ns("lookup_big_all_ns") }
/^lookup \(big, 13 names/ { ns("lookup_big_set_ns") }
END {
    printf "compile_wall_s=%.2f\n", wall
    if (havecpu) printf "compile_cpu_s=%.2f\n", cpu
}
