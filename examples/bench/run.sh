#!/usr/bin/env bash
# Benchmark switchyard against HAProxy, nginx and Caddy on this machine, over
# loopback only, and print a markdown table.
#
#   examples/bench/run.sh            # full: 3 interleaved rounds (≤ 10 min)
#   examples/bench/run.sh --quick    # 1 round, short runs (≤ 2 min)
#
# Options:
#   --proxies "switchyard haproxy nginx caddy"   which proxies, in this order
#                  (default: all of these plus switchyard-std, the same
#                  binary with `engine = "std"`, when the build accepts it)
#   --no-install                                 never run apt-get
#   --out DIR                                    results directory
#
# Topology: every proxy in turn runs pinned to one core (BENCH_PROXY_CPU,
# default 1); the two nginx backends, the TCP echo/sink backends, wrk and the
# benchtool clients run on the other (BENCH_LOAD_CPU, default 0). Ports are
# BENCH_PORT_BASE (default 18000) + 1..102 on 127.0.0.1, checked free first.
# The time budgets count from the first benchmark, after installs and builds.
#
# Measured per proxy and round (see BENCHMARKS.md for the reading):
#   proxy CPU (utime+stime of its process tree) per request / round trip,
#   wrk throughput, c1 latency, L4 bulk MiB/s, RSS per idle keep-alive
#   connection, and error counts. Raw outputs land in examples/bench/results/.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
CONFIG_DIR=$BENCH_DIR/configs

PORT_BASE=${BENCH_PORT_BASE:-18000}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
HOST=127.0.0.1

BACKEND1=$HOST:$((PORT_BASE + 1))
BACKEND2=$HOST:$((PORT_BASE + 2))
ECHO1=$HOST:$((PORT_BASE + 11))
ECHO2=$HOST:$((PORT_BASE + 12))
SINK1=$HOST:$((PORT_BASE + 13))
HTTP_PORT=$((PORT_BASE + 100))
HTTP_ADDR=$HOST:$HTTP_PORT
ECHO_ADDR=$HOST:$((PORT_BASE + 101))
SINK_ADDR=$HOST:$((PORT_BASE + 102))
URL=http://$HTTP_ADDR/

MODE=full
PROXIES="switchyard switchyard-std haproxy nginx caddy"
PROXIES_GIVEN=0
INSTALL=1
OUT_DIR=""
IDLE_TARGET=10000

STARTED_PIDS=() # every process this script started, for the EXIT trap
SCRIPT_START=$SECONDS

say() { printf '[%4ds] %s\n' "$((SECONDS - SCRIPT_START))" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit "${1:-0}"
}

parse_args() {
	while (($#)); do
		case $1 in
		--quick) MODE=quick ;;
		--proxies)
			PROXIES=${2:?--proxies needs a list}
			PROXIES_GIVEN=1
			shift
			;;
		--no-install) INSTALL=0 ;;
		--out)
			OUT_DIR=${2:?--out needs a directory}
			shift
			;;
		-h | --help) usage 0 ;;
		*)
			say "unknown argument: $1"
			usage 2
			;;
		esac
		shift
	done
	for p in $PROXIES; do
		case $p in switchyard | switchyard-std | haproxy | nginx | caddy) ;; *) die "unknown proxy: $p" ;; esac
	done
	# Durations in seconds. Full: about 30 s per proxy and round, 15 of them.
	if [[ $MODE == quick ]]; then
		ROUNDS=1 WARMUP=1 KEEPALIVE_SECS=3 CLOSE_SECS=2 C1_SECS=2 PINGPONG_SECS=2 BULK_MIB=512 BUDGET=105
	else
		ROUNDS=3 WARMUP=2 KEEPALIVE_SECS=6 CLOSE_SECS=5 C1_SECS=5 PINGPONG_SECS=5 BULK_MIB=1024 BUDGET=540
	fi
}

# --- machine and packages -------------------------------------------------

nginx_stream_module() {
	# Prints the load_module line nginx needs for `stream {}`, or nothing
	# when the module is built in; fails when it is missing.
	local v
	v=$(nginx -V 2>&1)
	if [[ $v == *--with-stream=dynamic* ]]; then
		local so
		for so in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so; do
			[[ -e $so ]] && {
				echo "load_module $so;"
				return 0
			}
		done
		return 1
	fi
	[[ $v == *--with-stream* ]]
}

ensure_packages() {
	local missing=() p
	for p in wrk haproxy nginx caddy taskset; do
		command -v "$p" >/dev/null || missing+=("$p")
	done
	missing=("${missing[@]/taskset/util-linux}")
	if command -v nginx >/dev/null && ! nginx_stream_module >/dev/null; then
		missing+=(libnginx-mod-stream)
	fi
	[[ " ${missing[*]} " == *" nginx "* ]] && missing+=(libnginx-mod-stream)
	((${#missing[@]})) || return 0
	((INSTALL)) || die "missing packages: ${missing[*]} (run without --no-install, as root)"
	[[ $(id -u) == 0 ]] || die "missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
	say "installing ${missing[*]} (Debian packages)"
	# Keep the packaged services (nginx and Caddy on :80, HAProxy) from
	# starting: this benchmark runs its own copies on loopback.
	local policy=/usr/sbin/policy-rc.d made_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$OUT_DIR/apt.log" 2>&1 || rc=$?
	((made_policy)) && rm -f "$policy"
	((rc == 0)) || die "apt-get failed (see $OUT_DIR/apt.log)"
}

check_machine() {
	local cpus
	cpus=$(nproc --all)
	((cpus >= 2)) || die "need 2 cores for the proxy/load split, have $cpus"
	taskset -c "$PROXY_CPU" true 2>/dev/null || die "cannot pin to CPU $PROXY_CPU"
	taskset -c "$LOAD_CPU" true 2>/dev/null || die "cannot pin to CPU $LOAD_CPU"
	command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
	command -v go >/dev/null || die "go is not installed"

	# Idle connections need a descriptor each in the client and the proxy;
	# HAProxy also insists on two per connection of its maxconn (client and
	# server side), so the count is capped to fit half the hard limit. The
	# same count is used for every proxy.
	local hard
	hard=$(ulimit -Hn)
	[[ $hard == unlimited ]] && hard=1048576
	ulimit -n "$hard"
	NOFILE=$hard
	IDLE_CONNS=$IDLE_TARGET
	if ((2 * (IDLE_TARGET + 500) + 1000 > hard)); then
		IDLE_CONNS=$(((hard - 2000) / 2 / 500 * 500))
		((IDLE_CONNS > 0)) || die "open-file hard limit $hard is too low"
		say "note: open-file hard limit is $hard (cannot raise): the idle test uses $IDLE_CONNS connections, not $IDLE_TARGET"
	fi
	MAX_CONNS=$((IDLE_CONNS + 500))
	NGINX_WORKER_CONNS=$((IDLE_CONNS + 1000))
}

record_machine() {
	{
		echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
		echo "cores: $(nproc --all) ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core); hypervisor: $(lscpu | sed -n 's/^Hypervisor vendor: *//p')"
		echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
		echo "kernel: $(uname -sr)"
		echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"
		echo "go: $(go version)"
		echo "switchyard: $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$REPO_DIR" diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
		echo "packages:"
		dpkg-query -W -f '  ${Package} ${Version}\n' haproxy nginx libnginx-mod-stream caddy wrk 2>/dev/null || true
		echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); CPU busy before start: $(cpu_busy_percent)% of all cores"
		echo "open-file limit: $NOFILE; idle connections: $IDLE_CONNS"
	} >"$OUT_DIR/machine.txt"
}

# cpu_busy_percent: how busy all cores are over one second, from /proc/stat:
# anything well above 0 before the benchmark starts means other work will
# share the machine with it.
cpu_busy_percent() {
	local a b
	read -r -a a < <(grep '^cpu ' /proc/stat)
	sleep 1
	read -r -a b < <(grep '^cpu ' /proc/stat)
	local busy=0 total=0 i d
	for ((i = 1; i <= 8; i++)); do
		d=$((b[i] - a[i]))
		total=$((total + d))
		((i == 4 || i == 5)) || busy=$((busy + d))
	done
	echo $((total > 0 ? 100 * busy / total : 0))
}

# --- processes --------------------------------------------------------------

# start NAME CPU CMD...: runs CMD in the background pinned to CPU, logging to
# logs/NAME.log; sets STARTED_PID.
start() {
	local name=$1 cpu=$2
	shift 2
	taskset -c "$cpu" "$@" >"$OUT_DIR/logs/$name.log" 2>&1 &
	STARTED_PID=$!
	STARTED_PIDS+=("$STARTED_PID")
}

# stop PID: SIGTERM, then SIGKILL after 5 s; children left behind by a
# killed parent (nginx workers) are stopped too.
stop() {
	local pid=$1 kids i
	kids=$(pgrep -P "$pid" || true)
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -KILL "$pid" 2>/dev/null; then
			say "  pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) ignored SIGTERM for 5 s: killed"
		fi
	fi
	wait "$pid" 2>/dev/null || true
	for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
	local kept=() p
	for p in "${STARTED_PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
	STARTED_PIDS=("${kept[@]}")
}

cleanup() {
	local i
	for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
		stop "${STARTED_PIDS[i]}"
	done
}

port_in_use() {
	if command -v ss >/dev/null; then
		[[ -n $(ss -Hltn "sport = :$1") ]]
	else
		(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
	fi
}

check_ports() {
	local addr busy=()
	for addr in "$BACKEND1" "$BACKEND2" "$ECHO1" "$ECHO2" "$SINK1" "$HTTP_ADDR" "$ECHO_ADDR" "$SINK_ADDR"; do
		port_in_use "${addr##*:}" && busy+=("${addr##*:}")
	done
	((${#busy[@]} == 0)) || die "ports in use: ${busy[*]} (pick another range with BENCH_PORT_BASE)"
}

# wait_listening PID NAME ADDR...: polls until every ADDR accepts, for at
# most 15 s, failing early when PID exits.
wait_listening() {
	local pid=$1 name=$2 addr i
	shift 2
	for addr; do
		for ((i = 0; ; i++)); do
			(exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null && break
			kill -0 "$pid" 2>/dev/null || die "$name exited at start: $(tail -5 "$OUT_DIR/logs/$name.log")"
			((i < 150)) || die "$name: nothing listening on $addr after 15 s"
			sleep 0.1
		done
	done
}

# render TEMPLATE OUT [NAME=VALUE...]: fills @NAME@ placeholders.
render() {
	local template=$1 out=$2 kv script=()
	shift 2
	for kv in HTTP_ADDR="$HTTP_ADDR" HTTP_HOST="$HOST" HTTP_PORT="$HTTP_PORT" ECHO_ADDR="$ECHO_ADDR" \
		SINK_ADDR="$SINK_ADDR" BACKEND1="$BACKEND1" BACKEND2="$BACKEND2" ECHO1="$ECHO1" ECHO2="$ECHO2" \
		SINK1="$SINK1" MAX_CONNS="$MAX_CONNS" NOFILE="$NOFILE" NGINX_WORKER_CONNS="$NGINX_WORKER_CONNS" \
		RUN_DIR="$OUT_DIR/run" "$@"; do
		script+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
	done
	sed "${script[@]}" "$template" >"$out"
	! grep -n '@[A-Z_0-9]*@' "$out" || die "unfilled placeholder in $out"
}

# --- backends and proxies ---------------------------------------------------

start_backends() {
	local name addr
	for name in backend1 backend2; do
		[[ $name == backend1 ]] && addr=$BACKEND1 || addr=$BACKEND2
		mkdir -p "$OUT_DIR/run/$name-tmp"
		render "$CONFIG_DIR/nginx-backend.conf" "$OUT_DIR/run/$name.conf" NAME=$name LISTEN_ADDR="$addr"
		start "$name" "$LOAD_CPU" nginx -p "$OUT_DIR/run/" -e "$OUT_DIR/run/$name.error.log" -c "$OUT_DIR/run/$name.conf"
		wait_listening "$STARTED_PID" "$name" "$addr"
	done
	start tcp-backends "$LOAD_CPU" "$BENCHTOOL" serve -echo "$ECHO1,$ECHO2" -sink "$SINK1"
	wait_listening "$STARTED_PID" tcp-backends "$ECHO1" "$ECHO2" "$SINK1"
	local body
	body=$(curl_get "$BACKEND1")
	[[ $body == "hello from backend1" ]] || die "backend1 answered: $body"
}

# curl_get ADDR: the body of GET / (bash only, HTTP/1.0 so the server closes).
curl_get() {
	local addr=$1 line body=0 out=""
	exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
	printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$addr" >&3
	while IFS= read -r -t 5 line <&3; do
		line=${line%$'\r'}
		if ((body)); then out+=$line; elif [[ -z $line ]]; then body=1; fi
	done
	exec 3<&-
	printf '%s' "$out"
}

# render_switchyard NAME: switchyard's config; switchyard-std picks the
# net/http engine, switchyard keeps the default.
render_switchyard() {
	local engine_line=""
	[[ $1 == switchyard-std ]] && engine_line='engine          = "std"'
	render "$CONFIG_DIR/switchyard.hcl" "$OUT_DIR/run/$1.hcl" ENGINE_LINE="$engine_line"
}

# drop_unsupported_variants: without an `engine` attribute in this build,
# switchyard-std cannot be configured; leave it out (or fail when asked for).
drop_unsupported_variants() {
	[[ " $PROXIES " == *" switchyard-std "* ]] || return 0
	render_switchyard switchyard-std
	"$SWITCHYARD" validate -config "$OUT_DIR/run/switchyard-std.hcl" >/dev/null 2>"$OUT_DIR/logs/validate-std.log" && return 0
	((PROXIES_GIVEN)) && die "this build rejects engine = \"std\": $(head -3 "$OUT_DIR/logs/validate-std.log")"
	say "note: this build has no engine = \"std\": leaving switchyard-std out"
	local kept=() p
	for p in $PROXIES; do [[ $p == switchyard-std ]] || kept+=("$p"); done
	PROXIES=${kept[*]}
}

# start_proxy NAME: starts one proxy pinned to PROXY_CPU; sets PROXY_PID.
# HAS_L4 says whether it serves the TCP listeners.
start_proxy() {
	local name=$1 dir=$OUT_DIR/run
	HAS_L4=1
	case $name in
	switchyard | switchyard-std)
		render_switchyard "$name"
		start "$name" "$PROXY_CPU" "$SWITCHYARD" run -config "$dir/$name.hcl"
		;;
	haproxy)
		render "$CONFIG_DIR/haproxy.cfg" "$dir/haproxy.cfg"
		start haproxy "$PROXY_CPU" haproxy -db -f "$dir/haproxy.cfg"
		;;
	nginx)
		mkdir -p "$dir/nginx-proxy-tmp"
		render "$CONFIG_DIR/nginx-proxy.conf" "$dir/nginx-proxy.conf" LOAD_STREAM_MODULE="$(nginx_stream_module)"
		start nginx "$PROXY_CPU" nginx -p "$dir/" -e "$dir/nginx-proxy.error.log" -c "$dir/nginx-proxy.conf"
		;;
	caddy)
		HAS_L4=0
		render "$CONFIG_DIR/Caddyfile" "$dir/Caddyfile"
		mkdir -p "$dir/caddy-home"
		start caddy "$PROXY_CPU" env HOME="$dir/caddy-home" XDG_DATA_HOME="$dir/caddy-home" \
			XDG_CONFIG_HOME="$dir/caddy-home" caddy run --config "$dir/Caddyfile" --adapter caddyfile
		;;
	esac
	PROXY_PID=$STARTED_PID
	if ((HAS_L4)); then
		wait_listening "$PROXY_PID" "$name" "$HTTP_ADDR" "$ECHO_ADDR" "$SINK_ADDR"
	else
		wait_listening "$PROXY_PID" "$name" "$HTTP_ADDR"
	fi
}

# --- measurements -----------------------------------------------------------

# cpu_ticks PID: "TREE_TICKS CORE_TICKS", the CPU time of the proxy's
# process tree and everything that ran on the proxy core, in clock ticks.
cpu_ticks() {
	local ticks core
	read -r ticks _ _ core < <("$BENCHTOOL" procstat -pid "$1" -cpu "$PROXY_CPU") || die "cannot read /proc/$1"
	echo "$ticks $core"
}

# measure NAME CMD...: runs CMD (bounded by `timeout`), saving its output to
# raw/NAME.out and the CPU ticks before/after to raw/NAME.cpu.
measure() {
	local name=$1 before after rc=0
	shift
	read -r -a before < <(cpu_ticks "$PROXY_PID")
	"$@" >"$OUT_DIR/raw/$name.out" 2>"$OUT_DIR/raw/$name.err" || rc=$?
	read -r -a after < <(cpu_ticks "$PROXY_PID")
	((${#before[@]} == 2 && ${#after[@]} == 2)) || die "cannot read the CPU time of pid $PROXY_PID"
	printf 'before=%s\nafter=%s\ncore_before=%s\ncore_after=%s\n' \
		"${before[0]}" "${after[0]}" "${before[1]}" "${after[1]}" >"$OUT_DIR/raw/$name.cpu"
	((rc == 0)) || say "  $name exited $rc: $(head -c 300 "$OUT_DIR/raw/$name.err")"
	kill -0 "$PROXY_PID" 2>/dev/null || die "proxy died during $name (see $OUT_DIR/logs)"
}

wrk_run() { # wrk_run SECS ARGS...: wrk pinned to the load core, with a hard bound
	local secs=$1
	shift
	timeout $((secs + 20)) wrk -t1 -d"${secs}s" "$@" "$URL"
}

bench_proxy() {
	local round=$1 name=$2 id="r$1-$2"
	say "round $round/$ROUNDS: $name"
	start_proxy "$name"
	# Idle connections first, on a fresh process, so the RSS baseline is not
	# memory left over (or freed) by the load tests.
	say "  $IDLE_CONNS idle keep-alive connections"
	"$BENCHTOOL" idle -addr "$HTTP_ADDR" -conns "$IDLE_CONNS" -pid "$PROXY_PID" -timeout 60s \
		>"$OUT_DIR/raw/$id-idle.out" 2>"$OUT_DIR/raw/$id-idle.err" ||
		say "  idle: $(head -c 300 "$OUT_DIR/raw/$id-idle.out" "$OUT_DIR/raw/$id-idle.err")"

	wrk_run "$WARMUP" -c64 >"$OUT_DIR/raw/$id-warmup.out" 2>&1 || true
	say "  HTTP keep-alive c64, ${KEEPALIVE_SECS}s"
	measure "$id-http-c64" wrk_run "$KEEPALIVE_SECS" -c64 --latency
	say "  HTTP Connection: close c16, ${CLOSE_SECS}s"
	measure "$id-http-close" wrk_run "$CLOSE_SECS" -c16 -H "Connection: close"
	say "  HTTP c1 latency, ${C1_SECS}s"
	measure "$id-http-c1" wrk_run "$C1_SECS" -c1 --latency
	if ((HAS_L4)); then
		say "  L4 ping-pong 64 conns x 64 B, ${PINGPONG_SECS}s"
		measure "$id-l4-pingpong" timeout $((PINGPONG_SECS + 20)) \
			"$BENCHTOOL" pingpong -addr "$ECHO_ADDR" -conns 64 -size 64 -d "${PINGPONG_SECS}s"
		say "  L4 bulk ${BULK_MIB} MiB, one connection"
		measure "$id-l4-bulk" timeout 40 "$BENCHTOOL" bulk -addr "$SINK_ADDR" -mib "$BULK_MIB" -timeout 20s
	fi
	stop "$PROXY_PID"
}

build() {
	say "building switchyard and benchtool"
	(cd "$REPO_DIR" && go build -o "$SWITCHYARD" ./cmd/switchyard) || die "go build ./cmd/switchyard failed"
	(cd "$REPO_DIR" && go build -o "$BENCHTOOL" ./examples/bench/benchtool) || die "go build benchtool failed"
	"$SWITCHYARD" version >&2 || true
}

write_meta() {
	cat >"$OUT_DIR/meta.env" <<-EOF
		mode=$MODE
		rounds=$1
		proxies=$PROXIES
		hz=$(getconf CLK_TCK)
		idle_conns=$IDLE_CONNS
		description=$MODE run $(date -u +%Y-%m-%d); proxy on CPU $PROXY_CPU, backends + load on CPU $LOAD_CPU; wrk c64 ${KEEPALIVE_SECS}s, close c16 ${CLOSE_SECS}s, c1 ${C1_SECS}s; ping-pong ${PINGPONG_SECS}s; bulk ${BULK_MIB} MiB
	EOF
}

main() {
	parse_args "$@"
	: "${OUT_DIR:=$BENCH_DIR/results/$(date -u +%Y%m%d-%H%M%S)-$MODE}"
	mkdir -p "$OUT_DIR/raw" "$OUT_DIR/logs" "$OUT_DIR/run" "$OUT_DIR/bin"
	OUT_DIR=$(cd "$OUT_DIR" && pwd)
	SWITCHYARD=$OUT_DIR/bin/switchyard
	BENCHTOOL=$OUT_DIR/bin/benchtool
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	check_machine
	ensure_packages
	build
	drop_unsupported_variants
	check_ports
	record_machine
	# From here on the script and everything it starts stays on the load
	# core; only the proxies are moved to their own.
	taskset -cp "$LOAD_CPU" $$ >/dev/null
	start_backends

	local bench_start=$SECONDS round i started_rounds=0 longest=0 t0
	local -a order
	read -r -a order <<<"$PROXIES"
	for ((round = 1; round <= ROUNDS; round++)); do
		# Rotate the order each round so no proxy always runs first.
		for ((i = 0; i < ${#order[@]}; i++)); do
			# Stop before a proxy that would likely end past the budget.
			if ((SECONDS - bench_start + longest > BUDGET)); then
				say "time budget of ${BUDGET}s would be exceeded: stopping here (the table marks what did not run)"
				break 2
			fi
			started_rounds=$round
			t0=$SECONDS
			bench_proxy "$round" "${order[(i + round - 1) % ${#order[@]}]}"
			if ((SECONDS - t0 > longest)); then longest=$((SECONDS - t0)); fi
		done
	done
	((started_rounds > 0)) || die "no proxy was measured"
	write_meta "$started_rounds"
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT_DIR/machine.txt"
	cleanup
	say "benchmark took $((SECONDS - bench_start))s; results in $OUT_DIR"
	echo
	cat "$OUT_DIR/machine.txt"
	echo
	"$BENCHTOOL" report -dir "$OUT_DIR" | tee "$OUT_DIR/table.md"
}

main "$@"
