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
#
# It installs what it lacks: wrk, haproxy and nginx from Debian's packages (as root),
# and Caddy $CADDY_VERSION (default v2.11.9), built once with `go install` from the Go
# module proxy into bench/.bin/caddy-VERSION. Numbers are only comparable within one run.
#
# What routes cost (issue 25; DESIGN 4.1: 1,000 host routes add no more than a
# microsecond to a request): each core plugin row again with 1,000 host routes and
# 1,000 path-prefix routes, all to the pool "default" (the same backends), wrk sending
# Host: svc999.example.com, the last host route, on a path that is none of the
# prefixes. Under the table: each such row against its row without routes.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
IDLE=${IDLE:-10000}
ROUTES=${ROUTES:-1}
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
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
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
# for what an https backend costs against an http one.
T1=19111 T2=19112 T3=19113
"$WORK/fastbackend" -tls $T1 $T2 $T3 >/dev/null & TLS_BACKEND_PID=$!; PIDS+=($TLS_BACKEND_PID)

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
core_config 19204 ', "engine": "nethttp"' >"$WORK/core-plugin.json"
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
for p in $B1 $T1 19201 19202 19203 19204 19205 19207 19210 19211 19212 19213 19214 19215 19216 19217 19218; do wait_port "$p"; done
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
