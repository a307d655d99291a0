#!/usr/bin/env bash
# Compares the load balancer with HAProxy, nginx and Caddy on this machine: the same
# three fast backends behind each, least-connections everywhere, keep-alive to the
# backends, no access log, the same wrk load, several rounds, medians; the core on both
# of its fronts (eventloop, and nethttp: Go's net/http server, as Caddy), with its
# leastconn plugin and with the strategy in-process, and the eventloop engine both in
# data-plane processes (the default: one per CPU) and in one process. Then 10,000 idle keep-alive
# connections on the core (each engine), on HAProxy and on the bare proxy. Last, a new
# connection per request (wrk -H "Connection: close"), where the backend connection reuse
# policy shows: HAProxy's http-reuse safe and always against the core's
# load_balancer.reuse "safe" and "always" (the keep-alive rows run both in "safe", each
# one's default; nginx's upstream keepalive and Caddy's net/http pool reuse as "always"
# does). Caddy is the other net/http proxy: the core's nethttp rows are quoted against it.
#
#   bash bench/compare.sh                 # defaults: 3 rounds of 10s, wrk -t1 -c64
#   ROUNDS=5 DURATION=20s CONNS=128 bash bench/compare.sh
#   BASELINE=HEAD~3 bash bench/compare.sh # also the core (in-process) built at that commit
#   ACCESS_LOG=1 bash bench/compare.sh    # also the core (in-process) writing an access log
#   CADDY=/usr/bin/caddy bash bench/compare.sh # that Caddy instead of the pinned one
#   ROUTES=0 bash bench/compare.sh        # without the 2,000-route rows
#   TLS=0 bash bench/compare.sh           # without the TLS rows and their profile
#   PROFILE=0 bash bench/compare.sh       # the TLS rows without the profile after them
#   PROFILE_SECONDS=10 bash bench/compare.sh # a longer profile (default 5)
#
# It installs what it lacks: wrk, haproxy and nginx from Debian's packages (as root),
# openssl and nghttp2-client (h2load) for the TLS rows, and Caddy $CADDY_VERSION (default
# v2.11.9), built once with `go install` from the Go module proxy into
# bench/.bin/caddy-VERSION. Numbers are only comparable within one run.
#
# What routes cost (issue 25; DESIGN 4.1: 1,000 host routes add no more than a
# microsecond to a request): each core plugin row again with 1,000 host routes and
# 1,000 path-prefix routes, all to the pool "default" (the same backends), wrk sending
# Host: svc999.example.com, the last host route, on a path that is none of the
# prefixes. Under the table: each such row against its row without routes.
#
# Backends over TLS and over h2c: HAProxy (ssl / proto h2) and both fronts of the core in
# front of the same backends in https, then in h2c (HTTP/2 without TLS); each against
# its own row to http backends under the table.
#
# TLS, same certificate (issue 26), a table of its own after the others: HAProxy, nginx,
# Caddy and the core (its nethttp front, which serves config.json's listeners) each on a
# TLS listener with one ECDSA P-256 certificate made here with openssl, in front of the
# same backends in plain HTTP, all negotiating TLS 1.3, TLS_AES_128_GCM_SHA256, X25519
# (printed under the table). Rows, each proxy's ratio to HAProxy and CPU µs per request:
#   - keep-alive HTTPS, wrk (HTTP/1.1 only);
#   - a new connection per request, wrk -H "Connection: close", as wrk does it: it keeps
#     its TLS session across reconnects, so every handshake but a connection's first
#     resumes (TLS 1.3 ticket: the key exchange runs, the certificate and its signature
#     do not); the column "resumed" says how many did;
#   - the same with every handshake full: bench/tlssessions, an LD_PRELOAD shim for wrk
#     built here with cc, makes wrk forget its session and counts the handshakes (without
#     a C compiler these rows are skipped, saying why);
#   - HTTP/2: h2load -c$CONNS -m10 for $DURATION (without h2load, skipped, saying why).
# Under it: the core against HAProxy, nginx and Caddy on each load. Then, unless
# PROFILE=0, two more keep-alive runs on each proxy to name where the time goes: user and
# kernel CPU per request, system calls per request by name and HAProxy's and nginx's time
# in libcrypto and libssl (both with perf, when it is installed), and a CPU profile of
# the core from /debug/pprof on its admin address: the top 25, then every sample in one
# group (bench/pprofgroups.awk: handshakes, the cipher, crypto/tls, system calls,
# scheduler, GC, allocation, copies, net/http, the core) and by goroutine.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
IDLE=${IDLE:-10000}
ROUTES=${ROUTES:-1}
TLS=${TLS:-1}
PROFILE=${PROFILE:-1}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx-light)
[ "$TLS" = 0 ] || command -v openssl >/dev/null || need+=(openssl)
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# h2load (the HTTP/2 rows) is optional: without it those rows are skipped, saying why.
if [ "$TLS" != 0 ] && ! command -v h2load >/dev/null; then
  say "installing nghttp2-client (h2load)"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client; } >"$WORK/apt-h2load.log" 2>&1; then
    H2LOAD_WHY="apt-get install nghttp2-client failed: $(tail -n 1 "$WORK/apt-h2load.log")"
  fi
fi
CADDY_VERSION=${CADDY_VERSION:-v2.11.9}
if [ -z "${CADDY:-}" ]; then
  CADDY="$PWD/bench/.bin/caddy-$CADDY_VERSION/caddy"
  if [ ! -x "$CADDY" ]; then
    say "building caddy $CADDY_VERSION (go install, once)"
    GOBIN="$(dirname "$CADDY")" go install "github.com/caddyserver/caddy/v2/cmd/caddy@$CADDY_VERSION"
  fi
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "building"
go build -o "$WORK/core" ./core
go build -o "$WORK/fastbackend" ./bench/fastbackend
go build -o "$WORK/idleconns" ./bench/idleconns
go build -o "$WORK/bareproxy" ./bench/bareproxy
if [ -n "${BASELINE:-}" ]; then
  git worktree add -q --detach "$WORK/baseline" "$BASELINE"
  (cd "$WORK/baseline" && go build -o "$WORK/core-baseline" ./core)
  git worktree remove --force "$WORK/baseline"
fi

# --- backends and proxies ------------------------------------------------------------
B1=19101 B2=19102 B3=19103
"$WORK/fastbackend" $B1 $B2 $B3 >/dev/null & BACKEND_PID=$!; PIDS+=($BACKEND_PID)
# The same backends over TLS (a self-signed certificate: the proxies skip verification),
# for what an https backend costs against an http one (and h2c below).
T1=19111 T2=19112 T3=19113
"$WORK/fastbackend" -tls $T1 $T2 $T3 >/dev/null & TLS_BACKEND_PID=$!; PIDS+=($TLS_BACKEND_PID)
# And over HTTP/2 without TLS (h2c), for what an h2c backend costs.
H1=19121 H2=19122 H3=19123
"$WORK/fastbackend" -h2c $H1 $H2 $H3 >/dev/null & H2C_BACKEND_PID=$!; PIDS+=($H2C_BACKEND_PID)

cat >"$WORK/haproxy.cfg" <<CFG
global
  maxconn 20000
  no strict-limits
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse safe
frontend fe
  bind 127.0.0.1:19201
  default_backend be
frontend fe_always
  bind 127.0.0.1:19213
  default_backend be_always
backend be
  balance leastconn
  server b1 127.0.0.1:$B1
  server b2 127.0.0.1:$B2
  server b3 127.0.0.1:$B3
frontend fe_tls
  bind 127.0.0.1:19216
  default_backend be_tls
backend be_tls
  balance leastconn
  server b1 127.0.0.1:$T1 ssl verify none
  server b2 127.0.0.1:$T2 ssl verify none
  server b3 127.0.0.1:$T3 ssl verify none
frontend fe_h2c
  bind 127.0.0.1:19227
  default_backend be_h2c
backend be_h2c
  balance leastconn
  server b1 127.0.0.1:$H1 proto h2
  server b2 127.0.0.1:$H2 proto h2
  server b3 127.0.0.1:$H3 proto h2
backend be_always
  http-reuse always
  balance leastconn
  server b1 127.0.0.1:$B1
  server b2 127.0.0.1:$B2
  server b3 127.0.0.1:$B3
CFG
haproxy -f "$WORK/haproxy.cfg" -db >/dev/null 2>&1 & HAPROXY_PID=$!; PIDS+=($HAPROXY_PID)

cat >"$WORK/nginx.conf" <<CFG
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  upstream be {
    least_conn;
    server 127.0.0.1:$B1;
    server 127.0.0.1:$B2;
    server 127.0.0.1:$B3;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:19202;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CFG
nginx -c "$WORK/nginx.conf" -g 'daemon off;' >/dev/null 2>&1 & NGINX_PID=$!; PIDS+=($NGINX_PID)

# No admin endpoint, no automatic HTTPS, no config saved under $HOME, no access log
# (Caddy logs requests only with a log directive); keep-alive to the backends with
# enough idle connections for every client connection (Caddy keeps 32 per backend).
cat >"$WORK/Caddyfile" <<CFG
{
  admin off
  auto_https off
  persist_config off
}
:19203 {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 127.0.0.1:$B3 {
    lb_policy least_conn
    transport http {
      keepalive 2m
      keepalive_idle_conns_per_host 1024
    }
  }
}
CFG
"$CADDY" run --config "$WORK/Caddyfile" --adapter caddyfile >/dev/null 2>&1 & CADDY_PID=$!; PIDS+=($CADDY_PID)

core_config() { # port, extra load_balancer keys, extra top-level keys
  cat <<CFG
{
  "load_balancer": {"host": "127.0.0.1", "load_balancer_port": $1, "admin_addr": "", "strategy": "leastconn"${2:-}},
  "servers": {"backends": [{"url": "http://127.0.0.1:$B1"}, {"url": "http://127.0.0.1:$B2"}, {"url": "http://127.0.0.1:$B3"}]},
  "threadpool": {"min_workers": 64, "max_workers": 1024, "queue_capacity": 10000}${3:-}
}
CFG
}
# core_routes prints the routes key of the routes rows: 1,000 host routes
# (svcN.example.com), then 1,000 path prefixes (/svcN/), all to the pool "default".
core_routes() {
  printf ',\n  "routes": [\n'
  printf '    {"match": {"host": "svc%d.example.com"}, "pool": "default"},\n' $(seq 0 999)
  printf '    {"match": {"path_prefix": "/svc%d/"}, "pool": "default"},\n' $(seq 0 998)
  printf '    {"match": {"path_prefix": "/svc999/"}, "pool": "default"}\n  ]'
}
ROUTE_HOST=svc999.example.com # the last host route: what the routes rows send
# core_config_https is core_config with the TLS backends.
core_config_https() {
  core_config "$@" | sed -e "s|http://127.0.0.1:$B1|https://127.0.0.1:$T1|; s|http://127.0.0.1:$B2|https://127.0.0.1:$T2|" \
    -e "s|http://127.0.0.1:$B3\"}\]|https://127.0.0.1:$T3\"}], \"tls_skip_verify\": true|"
}
# core_config_h2c is core_config with the h2c backends.
core_config_h2c() {
  core_config "$@" | sed -e "s|http://127.0.0.1:$B1|h2c://127.0.0.1:$H1|; s|http://127.0.0.1:$B2|h2c://127.0.0.1:$H2|; s|http://127.0.0.1:$B3|h2c://127.0.0.1:$H3|"
}
core_config 19204 ', "engine": "nethttp"' >"$WORK/core-plugin.json"
core_config_h2c 19228 ', "engine": "eventloop"' >"$WORK/core-loop-h2c.json"
core_config_h2c 19229 ', "engine": "nethttp"' >"$WORK/core-nethttp-h2c.json"
core_config_https 19217 ', "engine": "eventloop"' >"$WORK/core-loop-https.json"
core_config_https 19218 ', "engine": "nethttp"' >"$WORK/core-nethttp-https.json"
core_config 19205 ', "engine": "nethttp"' >"$WORK/core-inproc.json"
core_config 19215 ', "engine": "nethttp", "reuse": "always"' >"$WORK/core-nethttp-always.json"
core_config 19210 ', "engine": "eventloop"' >"$WORK/core-loop.json"
core_config 19211 ', "engine": "eventloop"' >"$WORK/core-loop-inproc.json"
core_config 19212 ', "engine": "eventloop", "processes": 1' >"$WORK/core-loop-one.json"
core_config 19214 ', "engine": "eventloop", "reuse": "always"' >"$WORK/core-loop-always.json"
"$WORK/core" -config "$WORK/core-plugin.json" -log-level warn & CORE_PID=$!; PIDS+=($CORE_PID)
"$WORK/core" -config "$WORK/core-inproc.json" -log-level warn -in-process-strategy & INPROC_PID=$!; PIDS+=($INPROC_PID)
"$WORK/core" -config "$WORK/core-loop.json" -log-level warn & LOOP_PID=$!; PIDS+=($LOOP_PID)
"$WORK/core" -config "$WORK/core-loop-inproc.json" -log-level warn -in-process-strategy & LOOP_INPROC_PID=$!; PIDS+=($LOOP_INPROC_PID)
"$WORK/core" -config "$WORK/core-loop-one.json" -log-level warn & LOOP_ONE_PID=$!; PIDS+=($LOOP_ONE_PID)
"$WORK/core" -config "$WORK/core-loop-always.json" -log-level warn & LOOP_ALWAYS_PID=$!; PIDS+=($LOOP_ALWAYS_PID)
"$WORK/core" -config "$WORK/core-nethttp-always.json" -log-level warn & NETHTTP_ALWAYS_PID=$!; PIDS+=($NETHTTP_ALWAYS_PID)
"$WORK/core" -config "$WORK/core-loop-https.json" -log-level warn & LOOP_HTTPS_PID=$!; PIDS+=($LOOP_HTTPS_PID)
"$WORK/core" -config "$WORK/core-nethttp-https.json" -log-level warn & NETHTTP_HTTPS_PID=$!; PIDS+=($NETHTTP_HTTPS_PID)
"$WORK/core" -config "$WORK/core-loop-h2c.json" -log-level warn & LOOP_H2C_PID=$!; PIDS+=($LOOP_H2C_PID)
"$WORK/core" -config "$WORK/core-nethttp-h2c.json" -log-level warn & NETHTTP_H2C_PID=$!; PIDS+=($NETHTTP_H2C_PID)
"$WORK/bareproxy" 19207 $B1 $B2 $B3 & BARE_PID=$!; PIDS+=($BARE_PID)
if [ "$ROUTES" != 0 ]; then
  core_config 19219 ', "engine": "eventloop"' "$(core_routes)" >"$WORK/core-loop-routes.json"
  core_config 19220 ', "engine": "nethttp"' "$(core_routes)" >"$WORK/core-nethttp-routes.json"
  "$WORK/core" -config "$WORK/core-loop-routes.json" -log-level warn & LOOP_ROUTES_PID=$!; PIDS+=($LOOP_ROUTES_PID)
  "$WORK/core" -config "$WORK/core-nethttp-routes.json" -log-level warn & NETHTTP_ROUTES_PID=$!; PIDS+=($NETHTTP_ROUTES_PID)
fi
if [ -n "${ACCESS_LOG:-}" ]; then
  core_config 19209 ", \"access_log\": \"$WORK/access.log\"" >"$WORK/core-access.json"
  "$WORK/core" -config "$WORK/core-access.json" -log-level warn -in-process-strategy & ACCESS_PID=$!; PIDS+=($ACCESS_PID)
fi
if [ -n "${BASELINE:-}" ]; then
  core_config 19208 >"$WORK/core-baseline.json"
  "$WORK/core-baseline" -config "$WORK/core-baseline.json" -log-level warn -in-process-strategy & BASE_PID=$!; PIDS+=($BASE_PID)
fi

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  say "nothing listens on port $1"; exit 1
}
for p in $B1 $T1 $H1 19227 19228 19229 19201 19202 19203 19204 19205 19207 19210 19211 19212 19213 19214 19215 19216 19217 19218; do wait_port "$p"; done
[ -z "${BASELINE:-}" ] || wait_port 19208
[ -z "${ACCESS_LOG:-}" ] || wait_port 19209
[ "$ROUTES" = 0 ] || { wait_port 19219; wait_port 19220; }
sleep 1 # let health checks mark the backends up

# --- load ----------------------------------------------------------------------------
NAMES=("direct (one backend, the ceiling)" "haproxy (http-reuse safe)" "nginx" "caddy $CADDY_VERSION" "core nethttp, leastconn plugin" "core nethttp, in-process" "bare net/http proxy (baseline)")
TREES=("$BACKEND_PID" "$HAPROXY_PID" "$NGINX_PID" "$CADDY_PID" "$CORE_PID" "$INPROC_PID" "$BARE_PID" "$LOOP_PID" "$LOOP_INPROC_PID" "$LOOP_ONE_PID")
URLS=("http://127.0.0.1:$B1/" "http://127.0.0.1:19201/" "http://127.0.0.1:19202/" "http://127.0.0.1:19203/" "http://127.0.0.1:19204/" "http://127.0.0.1:19205/" "http://127.0.0.1:19207/")
NAMES+=("core eventloop, leastconn plugin" "core eventloop, in-process" "core eventloop, plugin, 1 process"); URLS+=("http://127.0.0.1:19210/" "http://127.0.0.1:19211/" "http://127.0.0.1:19212/")
NAMES+=("haproxy, https backends" "core eventloop, https backends" "core nethttp, https backends")
URLS+=("http://127.0.0.1:19216/" "http://127.0.0.1:19217/" "http://127.0.0.1:19218/")
TREES+=("$HAPROXY_PID" "$LOOP_HTTPS_PID" "$NETHTTP_HTTPS_PID")
NAMES+=("haproxy, h2c backends" "core eventloop, h2c backends" "core nethttp, h2c backends")
URLS+=("http://127.0.0.1:19227/" "http://127.0.0.1:19228/" "http://127.0.0.1:19229/")
TREES+=("$HAPROXY_PID" "$LOOP_H2C_PID" "$NETHTTP_H2C_PID")
HOSTS=() # a row's Host header (wrk -H), when it sets one
if [ "$ROUTES" != 0 ]; then
  LOOP_ROUTES_IDX=${#URLS[@]} NETHTTP_ROUTES_IDX=$((${#URLS[@]} + 1))
  NAMES+=("core eventloop, plugin, 2,000 routes" "core nethttp, plugin, 2,000 routes")
  URLS+=("http://127.0.0.1:19219/" "http://127.0.0.1:19220/")
  TREES+=("$LOOP_ROUTES_PID" "$NETHTTP_ROUTES_PID")
  HOSTS[$LOOP_ROUTES_IDX]=$ROUTE_HOST HOSTS[$NETHTTP_ROUTES_IDX]=$ROUTE_HOST
fi
if [ -n "${BASELINE:-}" ]; then
  BASE_IDX=${#URLS[@]}
  NAMES+=("core in-process at $BASELINE"); URLS+=("http://127.0.0.1:19208/"); TREES+=("$BASE_PID")
fi
if [ -n "${ACCESS_LOG:-}" ]; then
  NAMES+=("core in-process, access log on"); URLS+=("http://127.0.0.1:19209/"); TREES+=("$ACCESS_PID")
fi

to_ms() { # wrk latency such as 812.00us, 1.23ms, 2.01s
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# cpu_ticks prints the CPU time (user + system, in clock ticks) used so far by a process
# and all its live descendants: a proxy's workers, data-plane processes and plugin.
cpu_ticks() {
  local total=0 p
  for p in $(tree_pids "$1"); do
    total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
tree_pids() {
  local c
  echo "$1"
  for c in $(pgrep -P "$1" || true); do tree_pids "$c"; done
}
HZ=$(getconf CLK_TCK)
host_args() { # row: wrk's arguments for the row's Host header, if it has one
  [ -z "${HOSTS[$1]:-}" ] || printf '%s\n' -H "Host: ${HOSTS[$1]}"
}

for i in "${!URLS[@]}"; do mapfile -t hargs < <(host_args "$i"); wrk -t1 -c"$CONNS" -d2s "${hargs[@]}" "${URLS[$i]}" >/dev/null; done # warm up
declare -A RPS P50 P99 CPU
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!URLS[@]}"; do
    mapfile -t hargs < <(host_args "$i")
    t0=$(cpu_ticks "${TREES[$i]}")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${hargs[@]}" "${URLS[$i]}")
    t1=$(cpu_ticks "${TREES[$i]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    CPU[$i]+="$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}') "
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then say "round $r ${NAMES[$i]}: $(grep 'Non-2xx\|Socket errors' <<<"$out")"; fi
    RPS[$i]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
    P50[$i]+="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")") "
    P99[$i]+="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")") "
    say "round $r/$ROUNDS ${NAMES[$i]}: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s"
  done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
HA=$(median "${RPS[1]}") HACPU=$(median "${CPU[1]}")
printf '\n%s rounds of wrk -t1 -c%s -d%s, medians (a shared machine: read the ratios)\n\n' "$ROUNDS" "$CONNS" "$DURATION"
printf '| %-34s | %10s | %8s | %8s | %11s | %10s | %11s |\n' proxy "requests/s" "p50 ms" "p99 ms" "vs haproxy" "CPU µs/req" "vs haproxy"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "------------------------------------" "------------" "----------" "----------" "-------------" "------------" "-------------"
for i in "${!URLS[@]}"; do
  rps=$(median "${RPS[$i]}")
  cpu=$(median "${CPU[$i]}")
  printf '| %-34s | %10.0f | %8s | %8s | %10.2fx | %10s | %10.2fx |\n' "${NAMES[$i]}" "$rps" "$(median "${P50[$i]}")" "$(median "${P99[$i]}")" "$(awk -v a="$rps" -v b="$HA" 'BEGIN {print a / b}')" "$cpu" "$(awk -v a="$cpu" -v b="$HACPU" 'BEGIN {print a / b}')"
done
PLUGIN=$(median "${RPS[4]}") INPROC=$(median "${RPS[5]}") CADDYRPS=$(median "${RPS[3]}") CADDYCPU=$(median "${CPU[3]}")
printf '\ncore nethttp / caddy: %.2fx requests/s, %.2fx CPU per request with the plugin; %.2fx, %.2fx in-process\n' \
  "$(awk -v a="$PLUGIN" -v b="$CADDYRPS" 'BEGIN {print a / b}')" "$(awk -v a="$(median "${CPU[4]}")" -v b="$CADDYCPU" 'BEGIN {print a / b}')" \
  "$(awk -v a="$INPROC" -v b="$CADDYRPS" 'BEGIN {print a / b}')" "$(awk -v a="$(median "${CPU[5]}")" -v b="$CADDYCPU" 'BEGIN {print a / b}')"
printf 'core nethttp with the plugin / in-process: %.2fx\n' "$(awk -v a="$PLUGIN" -v b="$INPROC" 'BEGIN {print a / b}')"
printf 'core nethttp in-process / bare net/http proxy: %.2fx\n' "$(awk -v a="$INPROC" -v b="$(median "${RPS[6]}")" 'BEGIN {print a / b}')"
printf 'core eventloop with the plugin / in-process: %.2fx\n' "$(awk -v a="$(median "${RPS[7]}")" -v b="$(median "${RPS[8]}")" 'BEGIN {print a / b}')"
printf 'core eventloop, data-plane processes / one process: %.2fx\n' "$(awk -v a="$(median "${RPS[7]}")" -v b="$(median "${RPS[9]}")" 'BEGIN {print a / b}')"
printf 'https backends / http backends: haproxy %.2fx, core eventloop %.2fx, core nethttp %.2fx (requests/s, plugin rows)\n' \
  "$(awk -v a="$(median "${RPS[10]}")" -v b="$HA" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${RPS[11]}")" -v b="$(median "${RPS[7]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${RPS[12]}")" -v b="$PLUGIN" 'BEGIN {print a / b}')"
printf 'core eventloop / haproxy, both to https backends: %.2fx requests/s, %.2fx CPU per request\n' \
  "$(awk -v a="$(median "${RPS[11]}")" -v b="$(median "${RPS[10]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${CPU[11]}")" -v b="$(median "${CPU[10]}")" 'BEGIN {print a / b}')"
printf 'h2c backends / http backends: haproxy %.2fx, core eventloop %.2fx, core nethttp %.2fx (requests/s, plugin rows)\n' \
  "$(awk -v a="$(median "${RPS[13]}")" -v b="$HA" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${RPS[14]}")" -v b="$(median "${RPS[7]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${RPS[15]}")" -v b="$PLUGIN" 'BEGIN {print a / b}')"
printf 'core eventloop / haproxy, both to h2c backends: %.2fx requests/s, %.2fx CPU per request\n' \
  "$(awk -v a="$(median "${RPS[14]}")" -v b="$(median "${RPS[13]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${CPU[14]}")" -v b="$(median "${CPU[13]}")" 'BEGIN {print a / b}')"
if [ "$ROUTES" != 0 ]; then
  routes_vs() { # front, routes row, its row without routes
    local rr=$(median "${RPS[$2]}") r0=$(median "${RPS[$3]}") c=$(median "${CPU[$2]}") c0=$(median "${CPU[$3]}")
    printf '2,000 routes / none, core %s plugin: %.2fx requests/s, %.2fx CPU per request (%s vs %s µs): adds %+.2f µs/request\n' \
      "$1" "$(awk -v a="$rr" -v b="$r0" 'BEGIN {print a / b}')" "$(awk -v a="$c" -v b="$c0" 'BEGIN {print a / b}')" \
      "$c" "$c0" "$(awk -v a="$c" -v b="$c0" 'BEGIN {print a - b}')"
  }
  routes_vs eventloop "$LOOP_ROUTES_IDX" 7
  routes_vs nethttp "$NETHTTP_ROUTES_IDX" 4
fi
if [ -n "${BASELINE:-}" ]; then
  printf 'core eventloop in-process / the same at %s: %.2fx\n' "$BASELINE" "$(awk -v a="$(median "${RPS[8]}")" -v b="$(median "${RPS[$BASE_IDX]}")" 'BEGIN {print a / b}')"
fi
if [ -n "${ACCESS_LOG:-}" ]; then
  last=$((${#URLS[@]} - 1))
  printf 'core in-process with the access log / without: %.2fx\n' "$(awk -v a="$(median "${RPS[$last]}")" -v b="$INPROC" 'BEGIN {print a / b}')"
fi

# --- a new connection per request ---------------------------------------------------
# Every request opens a client connection, so every request is a first request: under
# "safe" it cannot take an idle backend connection another client used last.
CNAMES=("haproxy, http-reuse safe" "haproxy, http-reuse always" "nginx (reuses as always)" "caddy (reuses as always)" "core eventloop, reuse safe" "core eventloop, reuse always" "core nethttp, reuse safe" "core nethttp, reuse always")
CURLS=("http://127.0.0.1:19201/" "http://127.0.0.1:19213/" "http://127.0.0.1:19202/" "http://127.0.0.1:19203/" "http://127.0.0.1:19210/" "http://127.0.0.1:19214/" "http://127.0.0.1:19204/" "http://127.0.0.1:19215/")
CTREES=("$HAPROXY_PID" "$HAPROXY_PID" "$NGINX_PID" "$CADDY_PID" "$LOOP_PID" "$LOOP_ALWAYS_PID" "$CORE_PID" "$NETHTTP_ALWAYS_PID")
declare -A CRPS CP99 CCPU
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!CURLS[@]}"; do
    t0=$(cpu_ticks "${CTREES[$i]}")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "Connection: close" "${CURLS[$i]}")
    t1=$(cpu_ticks "${CTREES[$i]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    CCPU[$i]+="$(awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}') "
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then say "round $r ${CNAMES[$i]}: $(grep 'Non-2xx\|Socket errors' <<<"$out")"; fi
    CRPS[$i]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
    CP99[$i]+="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")") "
    say "round $r/$ROUNDS new connection per request, ${CNAMES[$i]}: $(awk '/Requests\/sec/ {print $2}' <<<"$out") req/s"
  done
done
CHA=$(median "${CRPS[0]}")
printf '\nA new connection per request (wrk -H "Connection: close"), medians\n\n'
printf '| %-34s | %10s | %8s | %14s | %10s |\n' proxy "requests/s" "p99 ms" "vs haproxy safe" "CPU µs/req"
printf '|%s|%s|%s|%s|%s|\n' "------------------------------------" "------------" "----------" "----------------" "------------"
for i in "${!CURLS[@]}"; do
  rps=$(median "${CRPS[$i]}")
  printf '| %-34s | %10.0f | %8s | %14.2fx | %10s |\n' "${CNAMES[$i]}" "$rps" "$(median "${CP99[$i]}")" "$(awk -v a="$rps" -v b="$CHA" 'BEGIN {print a / b}')" "$(median "${CCPU[$i]}")"
done
printf '\ncore eventloop reuse safe / always: %.2fx; core nethttp: %.2fx; haproxy safe / always: %.2fx\n' \
  "$(awk -v a="$(median "${CRPS[4]}")" -v b="$(median "${CRPS[5]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${CRPS[6]}")" -v b="$(median "${CRPS[7]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${CRPS[0]}")" -v b="$(median "${CRPS[1]}")" 'BEGIN {print a / b}')"
printf 'core nethttp / caddy: %.2fx requests/s, %.2fx CPU per request with reuse always (as Caddy); %.2fx, %.2fx with reuse safe\n' \
  "$(awk -v a="$(median "${CRPS[7]}")" -v b="$(median "${CRPS[3]}")" 'BEGIN {print a / b}')" "$(awk -v a="$(median "${CCPU[7]}")" -v b="$(median "${CCPU[3]}")" 'BEGIN {print a / b}')" \
  "$(awk -v a="$(median "${CRPS[6]}")" -v b="$(median "${CRPS[3]}")" 'BEGIN {print a / b}')" "$(awk -v a="$(median "${CCPU[6]}")" -v b="$(median "${CCPU[3]}")" 'BEGIN {print a / b}')"

# --- idle connections ----------------------------------------------------------------
# One proxy at a time, each after the load above: resident memory before and after.
idle() { # name, port, pid
  printf '  %-26s' "$1:"
  "$WORK/idleconns" -addr "127.0.0.1:$2" -n "$IDLE" -pid "$3"
}
printf '\n%s idle keep-alive client connections, resident memory:\n' "$IDLE"
idle "core nethttp (plugin)" 19204 "$CORE_PID"
idle "core eventloop (plugin)" 19210 "$LOOP_PID"
idle haproxy 19201 "$HAPROXY_PID"
idle "bare net/http proxy" 19207 "$BARE_PID"

# --- TLS, same certificate -----------------------------------------------------------
# One ECDSA P-256 certificate for 127.0.0.1 and localhost, on a TLS listener of each
# proxy in front of the same plain-HTTP backends. Every one is set to negotiate what Go
# picks: TLS 1.3, TLS_AES_128_GCM_SHA256, X25519 (HAProxy and nginx are told to prefer
# AES-128 too; OpenSSL would give wrk AES-256), ALPN h2 and http/1.1. Each reuses idle
# backend connections freely (HAProxy and the core with "always", as nginx and Caddy do),
# so the rows compare the client side, TLS, and not the reuse policy of the table above;
# nginx keeps a client connection for good, as the others do (not for 1,000 requests).
[ "$TLS" != 0 ] || exit 0
TLS_DIR="$WORK/tls" SUITES=TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
mkdir -p "$TLS_DIR"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
cat "$TLS_DIR/cert.pem" "$TLS_DIR/key.pem" >"$TLS_DIR/haproxy.pem" # HAProxy takes both in one file

cat >"$WORK/haproxy-tls.cfg" <<CFG
global
  maxconn 20000
  no strict-limits
  ssl-default-bind-ciphersuites $SUITES
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:19221 ssl crt $TLS_DIR/haproxy.pem alpn h2,http/1.1
  default_backend be
backend be
  balance leastconn
  server b1 127.0.0.1:$B1
  server b2 127.0.0.1:$B2
  server b3 127.0.0.1:$B3
CFG
haproxy -f "$WORK/haproxy-tls.cfg" -db >/dev/null 2>&1 & TLS_HAPROXY_PID=$!; PIDS+=($TLS_HAPROXY_PID)

# nginx takes "http2 on;" from 1.25.1; before, http2 is a flag of listen.
listen="listen 127.0.0.1:19222 ssl http2;"
if printf '%s\n' 1.25.1 "$(nginx -v 2>&1 | sed 's|.*/||')" | sort -V -C; then listen="listen 127.0.0.1:19222 ssl; http2 on;"; fi
cat >"$WORK/nginx-tls.conf" <<CFG
worker_processes auto;
pid $WORK/nginx-tls.pid;
error_log $WORK/nginx-tls-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tls-body;
  proxy_temp_path $WORK/nginx-tls-proxy;
  upstream be {
    least_conn;
    server 127.0.0.1:$B1;
    server 127.0.0.1:$B2;
    server 127.0.0.1:$B3;
    keepalive 256;
  }
  server {
    $listen
    ssl_certificate $TLS_DIR/cert.pem;
    ssl_certificate_key $TLS_DIR/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites $SUITES;
    keepalive_requests 1000000000; # not 1000: the others keep a connection for good
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CFG
nginx -c "$WORK/nginx-tls.conf" -g 'daemon off;' >/dev/null 2>&1 & TLS_NGINX_PID=$!; PIDS+=($TLS_NGINX_PID)

# auto_https off: no redirects, no ACME; the certificate from files; no HTTP/3.
cat >"$WORK/Caddyfile-tls" <<CFG
{
  admin off
  auto_https off
  persist_config off
  servers {
    protocols h1 h2
  }
}
https://127.0.0.1:19223, https://localhost:19223 {
  bind 127.0.0.1
  tls $TLS_DIR/cert.pem $TLS_DIR/key.pem
  reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 127.0.0.1:$B3 {
    lb_policy least_conn
    transport http {
      keepalive 2m
      keepalive_idle_conns_per_host 1024
    }
  }
}
CFG
"$CADDY" run --config "$WORK/Caddyfile-tls" --adapter caddyfile >/dev/null 2>&1 & TLS_CADDY_PID=$!; PIDS+=($TLS_CADDY_PID)

# The core's default engine; its TLS listener is served by the nethttp front, in the
# control-plane process, whose /debug/pprof the admin address serves.
TLS_ADMIN=127.0.0.1:19226
core_config 19224 ', "reuse": "always"' ",
  \"listeners\": [{\"addr\": \"127.0.0.1:19225\", \"tls\": {\"certificates\": [{\"cert\": \"$TLS_DIR/cert.pem\", \"key\": \"$TLS_DIR/key.pem\"}]}}]" |
  sed "s|\"admin_addr\": \"\"|\"admin_addr\": \"$TLS_ADMIN\"|" >"$WORK/core-tls.json"
"$WORK/core" -config "$WORK/core-tls.json" -log-level warn & TLS_CORE_PID=$!; PIDS+=($TLS_CORE_PID)

TNAMES=(haproxy nginx "caddy $CADDY_VERSION" "core (nethttp front)")
TPORTS=(19221 19222 19223 19225)
TTREES=("$TLS_HAPROXY_PID" "$TLS_NGINX_PID" "$TLS_CADDY_PID" "$TLS_CORE_PID")
for p in "${TPORTS[@]}" 19224; do wait_port "$p"; done
sleep 1 # let health checks mark the backends up

# Which loads run: h2load and the handshake counter may be missing.
declare -A TLOAD_NAME=([ka]="keep-alive, HTTP/1.1" [resumed]="new conn./request, resumed" [full]="new conn./request, full hs." [h2]="HTTP/2, h2load -m10")
TLOADS=(ka resumed) SHIM="" SKIPPED=()
if command -v cc >/dev/null && cc -shared -fPIC -O2 -o "$WORK/tlssessions.so" bench/tlssessions/tlssessions.c -ldl 2>"$WORK/cc.log"; then
  SHIM="$WORK/tlssessions.so" TLOADS+=(full)
else
  SKIPPED+=("full handshakes: no C compiler built bench/tlssessions ($(head -n 1 "$WORK/cc.log" 2>/dev/null || echo "no cc")); wrk resumes every handshake the server lets it")
fi
if command -v h2load >/dev/null; then TLOADS+=(h2); else SKIPPED+=("HTTP/2: ${H2LOAD_WHY:-h2load (Debian: nghttp2-client) is not installed}"); fi

# per_req prints CPU microseconds per request: clock ticks, requests.
per_req() { awk -v t="$1" -v hz="$HZ" -v n="$2" 'BEGIN {if (n > 0) printf "%.2f", t / hz * 1e6 / n; else printf "-"}'; }

# tls_run measures one load on one proxy and records its numbers under "load,proxy".
declare -A TRPS TMEAN TP99 TCPU TRES
tls_run() {
  local load=$1 i=$2 url="https://127.0.0.1:${TPORTS[$2]}/" t0 t1 out reqs rps mean p99
  local env=() args=(-H "Connection: close")
  [ -z "$SHIM" ] || env=(LD_PRELOAD="$SHIM" TLS_HANDSHAKES_FILE="$WORK/handshakes")
  [ "$load" != full ] || env+=(TLS_SESSIONS=off)
  [ "$load" != ka ] || args=()
  rm -f "$WORK/handshakes"
  t0=$(cpu_ticks "${TTREES[$i]}")
  if [ "$load" = h2 ]; then
    out=$(h2load -c"$CONNS" -m10 -D "$DURATION" "$url" 2>&1)
    reqs=$(awk '/^requests:/ {print $8}' <<<"$out")
    rps=$(awk '/^finished in/ {print $4}' <<<"$out") mean=$(to_ms "$(awk '/^time for request:/ {print $6}' <<<"$out")") p99=-
    grep -q '^Application protocol: h2' <<<"$out" || say "${TNAMES[$i]}: h2load did not speak h2: $(grep '^Application protocol' <<<"$out")"
    awk '/^requests:/ && $10 + $12 + $14 > 0 {exit 1}' <<<"$out" || say "${TNAMES[$i]}, h2: $(grep '^requests:' <<<"$out")"
  else
    out=$(env "${env[@]}" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${args[@]}" "$url")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out") rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    mean=$(to_ms "$(awk '$1 == "Latency" && $2 != "Distribution" {print $2; exit}' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    if grep -q "Non-2xx\|Socket errors" <<<"$out"; then say "${TNAMES[$i]}, $load: $(grep 'Non-2xx\|Socket errors' <<<"$out")"; fi
  fi
  t1=$(cpu_ticks "${TTREES[$i]}")
  TRPS[$load,$i]+="$rps " TMEAN[$load,$i]+="$mean " TP99[$load,$i]+="$p99 "
  TCPU[$load,$i]+="$(per_req "$((t1 - t0))" "$reqs") "
  [ ! -s "$WORK/handshakes" ] || TRES[$load,$i]+="$(awk '{printf "%.1f", $4 * 100 / ($2 + $4)}' "$WORK/handshakes") "
  say "round $r/$ROUNDS TLS ${TLOAD_NAME[$load]}, ${TNAMES[$i]}: $rps req/s"
}

for i in "${!TPORTS[@]}"; do wrk -t1 -c"$CONNS" -d2s "https://127.0.0.1:${TPORTS[$i]}/" >/dev/null; done # warm up
for r in $(seq 1 "$ROUNDS"); do
  for load in "${TLOADS[@]}"; do
    for i in "${!TPORTS[@]}"; do tls_run "$load" "$i"; done
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "-"}'; }
tmedian() { if [ -n "${1// /}" ]; then median "$1"; else echo -; fi; } # median, or - for no numbers
printf '\nTLS, same certificate (ECDSA P-256; TLS 1.3, TLS_AES_128_GCM_SHA256, X25519), %s rounds of %s, -c%s, medians\n\n' "$ROUNDS" "$DURATION" "$CONNS"
printf '| %-28s | %-20s | %10s | %7s | %7s | %10s | %10s | %10s | %8s |\n' load proxy "requests/s" "mean ms" "p99 ms" "vs haproxy" "CPU µs/req" "vs haproxy" "resumed"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' "------------------------------" "----------------------" "------------" "---------" "---------" "------------" "------------" "------------" "----------"
for load in "${TLOADS[@]}"; do
  for i in "${!TPORTS[@]}"; do
    rps=$(tmedian "${TRPS[$load,$i]}") cpu=$(tmedian "${TCPU[$load,$i]}") res=-
    if [ "$load" = resumed ] || [ "$load" = full ]; then res=$(tmedian "${TRES[$load,$i]:-}"); [ "$res" = - ] || res="$res%"; fi
    printf '| %-28s | %-20s | %10s | %7s | %7s | %9sx | %10s | %9sx | %8s |\n' "${TLOAD_NAME[$load]}" "${TNAMES[$i]}" \
      "$(awk -v v="$rps" 'BEGIN {if (v == "-") printf "-"; else printf "%.0f", v}')" \
      "$(tmedian "${TMEAN[$load,$i]}")" "$(tmedian "${TP99[$load,$i]}")" "$(ratio "$rps" "$(tmedian "${TRPS[$load,0]}")")" \
      "$cpu" "$(ratio "$cpu" "$(tmedian "${TCPU[$load,0]}")")" "$res"
  done
done
printf '\nThe core against each, requests/s (CPU per request)\n\n'
printf '| %-28s | %-16s | %-16s | %-16s |\n' load "core / haproxy" "core / nginx" "core / caddy"
printf '|%s|%s|%s|%s|\n' "------------------------------" "------------------" "------------------" "------------------"
for load in "${TLOADS[@]}"; do
  line=$(printf '| %-28s ' "${TLOAD_NAME[$load]}")
  for i in 0 1 2; do
    line+=$(printf '| %-16s ' "$(ratio "$(tmedian "${TRPS[$load,3]}")" "$(tmedian "${TRPS[$load,$i]}")")x ($(ratio "$(tmedian "${TCPU[$load,3]}")" "$(tmedian "${TCPU[$load,$i]}")")x)")
  done
  printf '%s|\n' "$line"
done
printf '\nWhat each negotiated with an OpenSSL client (wrk and h2load use OpenSSL too):\n'
for i in "${!TPORTS[@]}"; do
  printf '  %-22s %s\n' "${TNAMES[$i]}:" "$(openssl s_client -connect "127.0.0.1:${TPORTS[$i]}" -alpn h2,http/1.1 </dev/null 2>/dev/null |
    awk -F': ' '/^New, / {sub(/^New, /, ""); sub(/, Cipher is /, " "); v = $0} /^Server Temp Key/ {k = $2} /^Peer signature type/ {g = $2} /^ALPN protocol/ {a = $2}
      END {printf "%s, key exchange %s, signature %s, ALPN %s", v, k, g, a}')"
done
printf 'Resumed: the share of handshakes that resumed a session (bench/tlssessions counts them in wrk).\n'
printf 'wrk keeps its session across reconnects and resumes (TLS 1.3 tickets: the key exchange still runs,\n'
printf 'the certificate and its signature do not); the "full hs." rows make it forget it every time.\n'
printf 'On the new-connection rows wrk does a handshake for each one the proxy does, on the same cores:\n'
printf 'their rates are the machine'"'"'s; CPU µs per request is the proxy'"'"'s own.\n'
for s in "${SKIPPED[@]}"; do printf 'skipped: %s\n' "$s"; done

# --- where the time goes, TLS keep-alive ---------------------------------------------
# Two more keep-alive wrk runs on each proxy, measured in their middle for
# PROFILE_SECONDS: user and kernel CPU per request (/proc), the CPU by library of HAProxy
# and nginx (perf record: the kernel, the proxy, libcrypto, libssl), the core's Go CPU
# profile from its /debug/pprof (top entries, then each sample in one group by
# bench/pprofgroups.awk, then by goroutine); then system calls per request by name.
[ "$PROFILE" != 0 ] || exit 0
PSECS=${PROFILE_SECONDS:-5}
PERF=""
if command -v perf >/dev/null && perf stat -e syscalls:sys_enter_read -- true >/dev/null 2>&1; then PERF=perf; fi
ticks() { # pid, field of /proc/PID/stat after the command (12 user, 13 system): the tree's clock ticks
  local total=0 p
  for p in $(tree_pids "$1"); do
    total=$((total + $(awk -v f="$2" '{sub(/^.*\) /, ""); print $f}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
# under runs a keep-alive wrk on proxy $1 for PSECS + 2 s and, from its second second, the
# command that follows, which lasts PSECS; it leaves the run's requests/s in MRPS, the
# requests of the command's PSECS in MREQS, and the proxy tree's CPU per request then,
# user and kernel, in MUSER and MSYS.
under() {
  local i=$1 u0 s0 u1 s1 w; shift
  wrk -t1 -c"$CONNS" -d$((PSECS + 2))s "https://127.0.0.1:${TPORTS[$i]}/" >"$WORK/pwrk.txt" & w=$!; PIDS+=($w)
  sleep 1
  u0=$(ticks "${TTREES[$i]}" 12) s0=$(ticks "${TTREES[$i]}" 13)
  "$@" >/dev/null 2>&1 || true
  u1=$(ticks "${TTREES[$i]}" 12) s1=$(ticks "${TTREES[$i]}" 13)
  wait "$w"
  MRPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/pwrk.txt")
  MREQS=$(awk -v r="$MRPS" -v s="$PSECS" 'BEGIN {print r * s}')
  MUSER=$(per_req "$((u1 - u0))" "$MREQS") MSYS=$(per_req "$((s1 - s0))" "$MREQS")
}
# One run each for the CPU (a Go profile of the core; perf record of HAProxy and nginx,
# for the share of libcrypto and libssl), then one for the system calls (perf stat on
# every syscall's tracepoint, which slows a proxy too much to share a run).
declare -A PUSER PSYS PCALLS PTOP PTLS PRPS
for i in "${!TPORTS[@]}"; do
  pids=$(tree_pids "${TTREES[$i]}" | paste -sd,)
  if [ "$i" = 3 ]; then
    under "$i" curl -sf -o "$WORK/core-tls.pprof" "http://$TLS_ADMIN/debug/pprof/profile?seconds=$PSECS"
  elif [ -n "$PERF" ] && [ "$i" -lt 2 ]; then
    under "$i" perf record -q -F 999 -p "$pids" -o "$WORK/perf-$i.data" -- sleep "$PSECS"
  else
    under "$i" sleep "$PSECS"
  fi
  PRPS[$i]=$MRPS PUSER[$i]=$MUSER PSYS[$i]=$MSYS PCALLS[$i]=- PTOP[$i]="" PTLS[$i]=-
  if [ -s "$WORK/perf-$i.data" ]; then # libcrypto's and libssl's share of the samples, times the CPU per request
    PTLS[$i]=$(perf report -i "$WORK/perf-$i.data" --sort dso --stdio 2>/dev/null | grep -v '^#' |
      awk -v cpu="$(awk -v a="$MUSER" -v b="$MSYS" 'BEGIN {print a + b}')" '$2 ~ /^lib(crypto|ssl)\./ {s += $1} END {printf "%.2f", s / 100 * cpu}')
  fi
  say "profiling TLS keep-alive, ${TNAMES[$i]}: $MRPS req/s"
  [ "$i" != 3 ] || PREQS=$MREQS # the core's requests in its profile
  if [ -n "$PERF" ]; then
    rm -f "$WORK/pstat.txt"
    under "$i" perf stat -x, -e 'syscalls:sys_enter_*' -p "$pids" -o "$WORK/pstat.txt" -- sleep "$PSECS"
    if [ -s "$WORK/pstat.txt" ]; then
      PCALLS[$i]=$(awk -F, -v n="$MREQS" '$3 ~ /sys_enter_/ {s += $1} END {printf "%.2f", s / n}' "$WORK/pstat.txt")
      PTOP[$i]=$(awk -F, -v n="$MREQS" '$3 ~ /sys_enter_/ && $1 / n >= 0.01 {sub(/.*sys_enter_/, "", $3); printf "%s %.2f\n", $3, $1 / n}' "$WORK/pstat.txt" |
        sort -k2 -gr | head -n 6 | paste -sd, | sed 's/,/, /g')
    fi
    say "counting system calls, ${TNAMES[$i]}: $MRPS req/s"
  fi
done
if [ -s "$WORK/core-tls.pprof" ]; then
  go tool pprof -traces "$WORK/core" "$WORK/core-tls.pprof" 2>/dev/null >"$WORK/core-tls.traces"
  awk -v reqs="$PREQS" -f bench/pprofgroups.awk "$WORK/core-tls.traces" | sort -t$'\t' -k2 -gr >"$WORK/core-groups.tsv"
  awk -v reqs="$PREQS" -v by=goroutine -f bench/pprofgroups.awk "$WORK/core-tls.traces" | sort -t$'\t' -k2 -gr >"$WORK/core-goroutines.tsv"
  PTLS[3]=$(awk -F'\t' '$1 ~ /^(crypto|TLS handshakes)/ {s += $3} END {printf "%.2f", s}' "$WORK/core-groups.tsv")
fi

printf '\nWhere the time goes, TLS keep-alive (more wrk -c%s runs on each, measured for %ss in their middle)\n\n' "$CONNS" "$PSECS"
printf '| %-20s | %10s | %11s | %8s | %8s | %12s | %10s |\n' proxy "requests/s" "CPU µs/req*" "user" "kernel" "syscalls/req" "TLS µs/req"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------" "------------" "-------------" "----------" "----------" "--------------" "------------"
for i in "${!TPORTS[@]}"; do
  printf '| %-20s | %10.0f | %11.2f | %8s | %8s | %12s | %10s |\n' "${TNAMES[$i]}" "${PRPS[$i]}" \
    "$(awk -v a="${PUSER[$i]}" -v b="${PSYS[$i]}" 'BEGIN {print a + b}')" "${PUSER[$i]}" "${PSYS[$i]}" "${PCALLS[$i]}" "${PTLS[$i]}"
done
printf '\n* under perf record (HAProxy, nginx) or pprof (the core), which cost some: the TLS table has the clean figures.\n'
if [ -n "$PERF" ]; then
  printf 'TLS µs/req: HAProxy and nginx, libcrypto and libssl (perf record); the core, its groups "crypto" and "TLS handshakes".\n'
  printf 'System calls per request, the most frequent (counted in a run of their own: perf stat slows a proxy):\n'
  for i in "${!TPORTS[@]}"; do printf '  %-22s %s\n' "${TNAMES[$i]}:" "${PTOP[$i]}"; done
else
  printf 'Without perf (Debian: linux-perf), no system call counts and no libraries.\n'
fi
if [ -s "$WORK/core-groups.tsv" ]; then
  printf '\nThe core, its Go CPU profile (%ss of /debug/pprof/profile on the control-plane process, which serves TLS):\n\n' "$PSECS"
  go tool pprof -top -nodecount=25 "$WORK/core" "$WORK/core-tls.pprof" 2>/dev/null | sed -n '/^ *flat/,$p'
  printf '\nThe same samples, each in one group:\n\n'
  printf '| %-52s | %6s | %7s |\n' group share "µs/req"
  printf '|%s|%s|%s|\n' "------------------------------------------------------" "--------" "---------"
  awk -F'\t' '{printf "| %-52s | %5.1f%% | %7.2f |\n", $1, $2, $3}' "$WORK/core-groups.tsv"
  printf '\nBy goroutine (the function each sample'"'"'s goroutine started in):\n\n'
  printf '| %-52s | %6s | %7s |\n' goroutine share "µs/req"
  printf '|%s|%s|%s|\n' "------------------------------------------------------" "--------" "---------"
  awk -F'\t' '{printf "| %-52s | %5.1f%% | %7.2f |\n", $1, $2, $3}' "$WORK/core-goroutines.tsv" | head -n 8
else
  printf '\nNo CPU profile from the core (http://%s/debug/pprof/profile did not answer).\n' "$TLS_ADMIN"
fi
printf '\nIn the TLS table, keep-alive: the core spends %s µs of CPU per request more than HAProxy (%s against %s), %s more than nginx.\n' \
  "$(awk -v a="$(tmedian "${TCPU[ka,3]}")" -v b="$(tmedian "${TCPU[ka,0]}")" 'BEGIN {printf "%.2f", a - b}')" \
  "$(tmedian "${TCPU[ka,3]}")" "$(tmedian "${TCPU[ka,0]}")" \
  "$(awk -v a="$(tmedian "${TCPU[ka,3]}")" -v b="$(tmedian "${TCPU[ka,1]}")" 'BEGIN {printf "%.2f", a - b}')"
