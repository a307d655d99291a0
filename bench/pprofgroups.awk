# pprofgroups.awk reads `go tool pprof -traces` of a CPU profile and puts each sample in
# the first group its stack matches (the handshake's whole work, GC, netpoll, then by the
# function that ran: a system call, the cipher, crypto/tls, ...); a sample that matches
# none goes to its nearest caller in net/http or in the core. It prints one line a group:
# name, share of the samples (%), microseconds per request given reqs, tab-separated.
# With -v by=goroutine, it groups by the function the sample's goroutine started in.
#
#   go tool pprof -traces cpu.pprof | awk -v reqs=N [-v by=goroutine] -f bench/pprofgroups.awk
function ms(v) {
  if (v ~ /ms$/) return v + 0
  if (v ~ /(us|µs)$/) return v / 1000
  if (v ~ /ns$/) return v / 1e6
  if (v ~ /s$/) return v * 1000
  return v + 0
}
function group(   st, leaf, k) {
  st = "|"; for (k = 1; k <= n; k++) st = st fr[k] "|"
  leaf = fr[1]
  if (st ~ /\|crypto\/tls\.\(\*Conn\)\.(handshakeContext|serverHandshake)/) return "TLS handshakes (all of their work)"
  if (st ~ /\|runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge|gcDrain|markroot|sweepone|gcStart|wbBufFlush|gcMarkDone|gcMarkTermination)/) return "GC (marking, assists, sweeping)"
  if (st ~ /\|runtime\.netpoll/) return "netpoll (epoll_wait)"
  if (leaf ~ /^(internal\/runtime\/syscall(\/linux)?|syscall)\./) return "system calls: socket reads and writes (kernel time)"
  if (leaf ~ /^(crypto\/|vendor\/golang\.org\/x\/crypto\/|golang\.org\/x\/crypto\/)/ && leaf !~ /^crypto\/tls\./) return "crypto: the record cipher (AES-GCM)"
  if (leaf ~ /^crypto\/tls\./) return "crypto/tls record layer (framing, not the cipher)"
  if (st ~ /\|runtime\.(mallocgc|newobject|makeslice|growslice|newarray|rawbyteslice|rawstring|makemap|makechan)/) return "allocation (mallocgc)"
  if (leaf ~ /^runtime\.(memmove|memclrNoHeapPointers|memclrHasPointers|typedmemmove)$/) return "copies (memmove, memclr)"
  if (st ~ /\|runtime\.(schedule|mcall|park_m|goexit0|newproc|findRunnable|sysmon|mstart|exitsyscall|entersyscall|futex|wakep|startm|stopm|gopark|goready|ready|notewakeup|notesleep|chansend|chanrecv|selectgo|closechan|lock2|unlock2|casgstatus|modtimer|deltimer|resettimer|runtimer|usleep|semacquire|semrelease)/ || leaf ~ /^(internal\/sync|sync)\./) return "scheduler, goroutines, channels, locks, timers"
  for (k = 1; k <= n; k++) {
    if (fr[k] ~ /^github\.com\/switchyard-lb\//) return "the core's own code"
    if (fr[k] ~ /^(net\/http|net\/textproto|net\/url|bufio|net|internal\/poll)\.|^(vendor\/)?golang\.org\/x\/net\//) return "net/http, bufio, net (Go's HTTP/1 and HTTP/2)"
  }
  return "other"
}
function root(   r) {
  r = fr[n]
  if (n == 1) return "(a stack of one frame: not walked)"
  if (r ~ /^runtime\.(mcall|mstart|mstart0|mstart1|morestack|systemstack|rt0_go|sigtramp|sigreturn)/) return "runtime (scheduler, signals: no goroutine)"
  return r
}
function flush(   g) { if (val > 0) { g = by == "goroutine" ? root() : group(); sum[g] += val; total += val }; val = 0; n = 0 }
/^-+\+-+$/ { flush(); inside = 1; next }
!inside { next }
val == 0 && /^ *[0-9.]+(ns|us|µs|ms|s) / { val = ms($1); sub(/^ *[0-9.]+[a-zµ]+ +/, ""); sub(/ \(inline\)$/, ""); fr[n = 1] = $0; next }
val > 0 { sub(/^ +/, ""); sub(/ \(inline\)$/, ""); fr[++n] = $0 }
END {
  flush()
  for (g in sum) printf "%s\t%.1f\t%.2f\n", g, sum[g] * 100 / total, sum[g] / 1000 * 1e6 / reqs
}
