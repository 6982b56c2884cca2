#!/usr/bin/env bash
# bench/run.sh - runs the receive-only baseline and then the agent on the same
# load from loadgen, and prints lines sent/received, loss, CPU and CPU per line
# for each, plus the agent/baseline ratio. The memory scenario sends N unique
# counter contexts to the agent and reports RSS bytes per context.
#
# usage: bench/run.sh [--build DIR] [--agent PATH] [--no-agent] [--no-baseline]
#                     [SCENARIO...]
#   scenarios: burst   as fast as loadgen can send, BURST_LINES lines
#              200k    200,000 lines/s for DURATION seconds
#              1m      1,000,000 lines/s for DURATION seconds
#              memory  MEM_CONTEXTS unique counter contexts (agent only) for
#                      each of MEM_WORKLOADS (names tags shared, see
#                      mem_loadgen_args): RSS growth per context and the
#                      aggregator's own accounting (memory_bytes) per context
#                      (flushes off: the storage, not a flush's transient)
#              flush   MEM_CONTEXTS unique counters, then FLUSH_RATE lines/s of
#                      the CONTEXTS workload for FLUSH_DURATION s (covering two
#                      flushes of all those contexts): lines lost while the
#                      big flushes run, the flush's main-thread time and the
#                      time receiving was held up (agent only)
#              status  MEM_CONTEXTS unique counters, then FLUSH_RATE lines/s of
#                      the CONTEXTS workload for DURATION s with GET /status
#                      every 0.5 s (the cardinality report walks every
#                      context): kernel drops while it runs and the requests'
#                      times (agent only; flushes off, RCVBUF as set)
#              all     burst 200k 1m memory flush
#   default: burst 200k 1m
# Knobs (environment): BURST_LINES=10000000 DURATION=10 CONTEXTS=10000 LPD=20
#   TAGS=3 TYPE=c (c|g|ms|h|s|d|mix|c,g,...) RCVBUF=0 (SO_RCVBUF for both
#   receivers, 0 = OS default) MEM_CONTEXTS=1000000 MEM_RATE=100000 SETTLE=1
#   MEM_WORKLOADS="names tags shared"
#   PIPELINES=1 (dogstatsd_pipeline_count) SENDERS=1 (loadgen source sockets:
#   SO_REUSEPORT spreads senders, not datagrams, over pipelines)
#   INTAKE=vm (the agent forwards to a VictoriaMetrics started on loopback
#   instead of writing JSON lines to /dev/null: flush time with encoding)
#   EXTRA_YAML='key: value\nkey2: value' (appended to the agent's config)
#   TAG_VALUE_LIMIT=0 (dogstatsd_tag_value_limit; off by default here so the
#   memory/flush/status loads, 10,000 ctx values per metric at 1M contexts,
#   keep every context as in earlier passes; bench/tagrules.sh and the perf
#   phase create_tl measure the limit's cost)
#   COALESCE_US=200 (the baseline batches its wake-ups as agent/net does,
#   NET_COALESCE_NS, under the same rate rule; 0 = a wake-up per readable
#   event)
#   AGENT=<path> (the same as --agent)
#   FLUSH_RATE=200000 FLUSH_DURATION=25 REPEAT=1 (baseline/agent pairs per
#   scenario, run alternately; with REPEAT > 1 the median ratio is printed:
#   on a shared 2-core machine single pairs vary by +-30%)
#   OUT=<dir for raw outputs, default a temp dir>
#   QDEPTH=1 (burst/200k/1m: bench/qdepth.py samples the receiver's socket
#   queue every 10 ms during the load, both receivers alike; adds a maxq_KiB
#   column: the deepest queue, against the socket buffer the kernel grants,
#   2 x RCVBUF)
#   WORK=10,20,40 (burst/200k/1m: after each baseline, the baseline again with
#   --work-per-line N for each N, rows "base+N": a receive-only loop plus N ns
#   of user-mode work per line, so the agent's CPU can be set against what a
#   given amount of work per line costs in the same run; ratios stay against
#   the plain baseline)
#
# CPU: summed over the receiver's threads from /proc/<pid>/task/*/schedstat
# (nanoseconds on CPU) between just before loadgen starts and after the
# traffic settled, so start-up and shutdown are excluded; the same method for
# both receivers. usr/line: the user-mode part of it (/proc/<pid>/stat utime):
# the receiver's own work; the rest is the kernel's receive path. The kernel
# splits user/system by where clock ticks land, so the split is reliable only
# for a busy receiver (bursts), not at low steady rates. Agent counters come from its status endpoint
# (GET /status: dogstatsd.lines, dogstatsd.packets, dogstatsd.kernel_drops).
set -euo pipefail

BUILD=./build
AGENT=${AGENT:-}	# or --agent PATH: another agent binary (an A/B against an older build)
RUN_AGENT=1
RUN_BASELINE=1
SCENARIOS=()
while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--agent) AGENT=$2; shift 2 ;;
	--no-agent) RUN_AGENT=0; shift ;;
	--no-baseline) RUN_BASELINE=0; shift ;;
	-h|--help) sed -n '2,/^set -e/{/^set -e/!p}' "$0"; exit 0 ;;
	all) SCENARIOS+=(burst 200k 1m memory flush); shift ;;
	burst|200k|1m|memory|flush|status) SCENARIOS+=("$1"); shift ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(burst 200k 1m)
AGENT=${AGENT:-$BUILD/agent/dd-mini-agent}
LOADGEN=$BUILD/bench/loadgen
BASELINE=$BUILD/bench/baseline

BURST_LINES=${BURST_LINES:-10000000}
DURATION=${DURATION:-10}
CONTEXTS=${CONTEXTS:-10000}
LPD=${LPD:-20}
TAGS=${TAGS:-3}
TYPE=${TYPE:-c}
RCVBUF=${RCVBUF:-0}
MEM_CONTEXTS=${MEM_CONTEXTS:-1000000}
MEM_RATE=${MEM_RATE:-100000}
MEM_WORKLOADS=${MEM_WORKLOADS:-names tags shared}
SETTLE=${SETTLE:-1}
REPEAT=${REPEAT:-1}
PIPELINES=${PIPELINES:-1}
SENDERS=${SENDERS:-1}
FLUSH_RATE=${FLUSH_RATE:-200000}
FLUSH_DURATION=${FLUSH_DURATION:-25}
OUT=${OUT:-$(mktemp -d /tmp/ddma-bench.XXXXXX)}
mkdir -p "$OUT"

for b in "$LOADGEN" "$BASELINE"; do
	[ -x "$b" ] || { echo "run.sh: $b not built (ninja -C $BUILD)" >&2; exit 1; }
done
if [ $RUN_AGENT = 1 ] && ! "$AGENT" --version >/dev/null 2>&1; then
	echo "run.sh: agent $AGENT not runnable: agent rows skipped" >&2
	RUN_AGENT=0
fi

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { # $1 = udp|tcp
	python3 -c "import socket,sys
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1]=='udp' else socket.SOCK_STREAM)
s.bind(('127.0.0.1',0)); print(s.getsockname()[1])" "$1"
}

# Nanoseconds on CPU, all live threads of $1.
cpu_ns() {
	local sum=0 t v
	for t in /proc/"$1"/task/*/schedstat; do
		{ read -r v _ < "$t"; } 2>/dev/null || continue
		sum=$((sum + v))
	done
	echo "$sum"
}

# User-mode CPU of the whole process (utime, all threads) in ns; clock-tick
# resolution (10 ms), so only for runs of a second or more.
CLK_TCK=$(getconf CLK_TCK)
user_ns() { awk -v t="$CLK_TCK" '{ printf "%.0f", $14 * 1e9 / t }' /proc/"$1"/stat; }

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' /proc/"$1"/status; }

kv() { # $1 = key, $2 = "k=v k=v" line
	tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

jget() { # $1 = dotted path, stdin = JSON; "-" when absent (an older agent)
	python3 -c "import json,sys
d=json.load(sys.stdin)
for k in sys.argv[1].split('.'):
    if not isinstance(d, dict) or k not in d:
        d = '-'
        break
    d = d[k]
print(d)" "$1"
}

status_json() { curl -sf --max-time 2 "http://127.0.0.1:$1/status"; }

loadgen_args() { # $1 = scenario
	local common=(--lines-per-datagram "$LPD" --contexts "$CONTEXTS" --tags-per-line "$TAGS"
		      --type "$TYPE" --seed 1 --senders "$SENDERS")
	case "$1" in
	burst) echo "${common[@]}" --lines "$BURST_LINES" ;;
	200k) echo "${common[@]}" --rate 200000 --duration "$DURATION" ;;
	1m) echo "${common[@]}" --rate 1000000 --duration "$DURATION" ;;
	esac
}

ROWS=()
row() {
	local r
	r=$(printf '%-8s %-9s %12s %12s %10s %10s %8s %9s %9s %7s' "$@")
	[ "${QDEPTH:-0}" = 1 ] && r+=" ${QMAX:--}"
	ROWS+=("$r")
}

# QDEPTH=1: the receive queue sampler around a load ($1 = port).
QPID=
QMAX=
qstart() {
	QMAX=
	[ "${QDEPTH:-0}" = 1 ] || return 0
	python3 "$(dirname "$0")/qdepth.py" "$1" > "$OUT/qdepth.$1" &
	QPID=$!
}
qstop() {
	[ -n "$QPID" ] || return 0
	kill -TERM "$QPID" 2>/dev/null || true
	wait "$QPID" || true
	QPID=
	QMAX=$(kv maxq_kib "$(tail -1 "$OUT/qdepth.$1")")
	QMAX=${QMAX:--}
}

# Waits until $1 (a command printing a number) stays the same for 0.3 s (max 30 s).
wait_stable() {
	local prev=-1 cur
	for _ in $(seq 100); do
		cur=$($1 2>/dev/null || echo -1)
		[ "$cur" = "$prev" ] && [ "$cur" != -1 ] && return 0
		prev=$cur
		sleep 0.3
	done
}

run_baseline() { # $1 = scenario [$2 = ns of work per line]
	local port pid c0 c1 u0 u1 sent res who=baseline out=$OUT/$1.baseline
	[ -n "${2:-}" ] && { who=base+$2; out=$OUT/$1.base$2; }
	port=$(free_port udp)
	"$BASELINE" --port "$port" --rcvbuf "$RCVBUF" --work-per-line "${2:-0}" \
		--coalesce-us "${COALESCE_US:-200}" > "$out.out" &
	pid=$!; PIDS+=("$pid")
	for _ in $(seq 50); do grep -q listening "$out.out" 2>/dev/null && break; sleep 0.1; done
	qstart "$port"
	c0=$(cpu_ns "$pid"); u0=$(user_ns "$pid")
	# shellcheck disable=SC2046
	sent=$("$LOADGEN" --port "$port" $(loadgen_args "$1"))
	echo "$sent" > "$out.loadgen"
	sleep "$SETTLE"
	qstop "$port"
	c1=$(cpu_ns "$pid"); u1=$(user_ns "$pid")
	kill -TERM "$pid"; wait "$pid" || true
	res=$(tail -1 "$out.out")
	report "$1" "$who" "$(kv lines_sent "$sent")" "$(kv lines "$res")" \
		"$(kv kernel_drops "$res")" $((c1 - c0)) $((u1 - u0))
}

write_config() { # $1 = dir, $2 = udp port, $3 = status port
	mkdir -p "$1/run" "$1/alerts.d"
	{
		echo "dogstatsd_port: $2"
		echo "bind_host: 127.0.0.1"
		echo "dogstatsd_output_file: /dev/null"
		if [ -n "$VM_URL" ]; then
			echo "dd_url: $VM_URL/datadog"
			echo "api_key: bench-key"
		fi
		echo "status_port: $3"
		echo "run_path: $1/run"
		echo "alerts_dir: $1/alerts.d"
		echo "log_level: warn"
		echo "dogstatsd_pipeline_count: $PIPELINES"
		[ "$RCVBUF" -gt 0 ] && echo "dogstatsd_so_rcvbuf: $RCVBUF"
		[ "${MAX_CONTEXTS:-0}" -gt 0 ] && echo "dogstatsd_max_contexts: $MAX_CONTEXTS"
		echo "dogstatsd_tag_value_limit: ${TAG_VALUE_LIMIT:-0}"
		[ -n "${EXTRA_YAML:-}" ] && printf '%b\n' "$EXTRA_YAML"
		true
	} > "$1/agent.yaml"
}

VM_URL=
start_vm() {
	local port
	command -v victoria-metrics >/dev/null || { echo "run.sh: INTAKE=vm needs victoria-metrics (scripts/deps.sh)" >&2; exit 1; }
	port=$(free_port tcp)
	victoria-metrics -httpListenAddr=127.0.0.1:"$port" -storageDataPath="$OUT/vm" \
		-retentionPeriod=100y > "$OUT/vm.log" 2>&1 &
	PIDS+=("$!")
	for _ in $(seq 100); do
		curl -sf --max-time 1 "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
		sleep 0.1
	done
	VM_URL=http://127.0.0.1:$port
}
[ "${INTAKE:-}" = vm ] && start_vm

AGENT_PID=
AGENT_SPORT=
start_agent() { # $1 = tag
	local dir=$OUT/$1.agent.d port
	port=$(free_port udp); AGENT_SPORT=$(free_port tcp)
	write_config "$dir" "$port" "$AGENT_SPORT"
	"$AGENT" --config "$dir/agent.yaml" > "$dir/stdout" 2> "$dir/stderr" &
	AGENT_PID=$!; PIDS+=("$AGENT_PID")
	for _ in $(seq 100); do
		curl -sf --max-time 1 "http://127.0.0.1:$AGENT_SPORT/health" >/dev/null 2>&1 && break
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$dir/stderr" >&2; return 1; }
		sleep 0.1
	done
	AGENT_PORT=$port
}

stop_agent() {
	kill -TERM "$AGENT_PID" 2>/dev/null || true
	wait "$AGENT_PID" || true
}

agent_packets() { status_json "$AGENT_SPORT" | jget dogstatsd.packets; }

run_agent() { # $1 = scenario
	local c0 c1 u0 u1 sent st out=$OUT/$1.agent
	QMAX=
	start_agent "$1" || { row "$1" agent - - - - - - - -; return; }
	qstart "$AGENT_PORT"
	c0=$(cpu_ns "$AGENT_PID"); u0=$(user_ns "$AGENT_PID")
	# shellcheck disable=SC2046
	sent=$("$LOADGEN" --port "$AGENT_PORT" $(loadgen_args "$1"))
	echo "$sent" > "$out.loadgen"
	sleep "$SETTLE"
	qstop "$AGENT_PORT"
	wait_stable agent_packets
	c1=$(cpu_ns "$AGENT_PID"); u1=$(user_ns "$AGENT_PID")
	if ! st=$(status_json "$AGENT_SPORT"); then
		echo "run.sh: $1: agent status unavailable (agent died?), see $OUT/$1.agent.d/stderr" >&2
		stop_agent
		row "$1" agent "$(kv lines_sent "$sent")" - - - - - - -
		return
	fi
	echo "$st" > "$out.status.json"
	stop_agent
	report "$1" agent "$(kv lines_sent "$sent")" "$(jget dogstatsd.lines <<<"$st")" \
		"$(jget dogstatsd.kernel_drops <<<"$st")" $((c1 - c0)) $((u1 - u0))
}

declare -A NS_PER_LINE RATIOS
report() { # scenario who sent received drops cpu_ns user_ns
	local nspl upl ratio=-
	nspl=$(awk -v c="$6" -v l="$4" 'BEGIN { printf "%.1f", (l > 0 ? c / l : 0) }')
	upl=$(awk -v c="$7" -v l="$4" 'BEGIN { printf "%.1f", (l > 0 ? c / l : 0) }')
	NS_PER_LINE[$1.$2]=$nspl
	if [ "$2" = agent ] && [ -n "${NS_PER_LINE[$1.baseline]:-}" ]; then
		ratio=$(awk -v a="$nspl" -v b="${NS_PER_LINE[$1.baseline]}" \
			'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
		RATIOS[$1]="${RATIOS[$1]:-} $ratio"
	fi
	row "$1" "$2" "$3" "$4" $(($3 - $4)) "$5" \
		"$(awk -v c="$6" 'BEGIN { printf "%.3f", c / 1e9 }')" "$nspl" "$upl" "$ratio"
}

# The memory workloads: every line a new counter context, MEM_CONTEXTS of them.
#   names   plain unique names (loadgen.metric.<n>, no tags)
#   tags    a distinct tag set per context: 100 names, TAGS tags of which the
#           first is instance_id:<n> (what a per-object tag produces)
#   shared  100 names, TAGS tags, each tag set shared by 10 contexts (an
#           optimistic case: the tag sets cost a tenth each)
mem_loadgen_args() { # $1 = workload
	case "$1" in
	names) echo --tags-per-line 0 ;;
	tags) echo --tags-per-line "$TAGS" --unique-tags ;;
	shared) echo --tags-per-line "$TAGS" ;;
	*) echo "run.sh: unknown MEM_WORKLOADS entry $1" >&2; return 1 ;;
	esac
}

run_memory() { # $1 = workload
	local before after hwm sent st ctx args out=$OUT/memory-$1.agent
	args=$(mem_loadgen_args "$1") || return
	# no flush during the run: RSS is the contexts' storage (the flush's
	# transient memory is the flush scenario's subject)
	EXTRA_YAML="dogstatsd_flush_interval: 3600${EXTRA_YAML:+\n$EXTRA_YAML}" start_agent "memory-$1" ||
		{ echo "memory $1: agent did not start" >&2; return; }
	sleep 0.5
	before=$(rss_kb "$AGENT_PID" VmRSS)
	# shellcheck disable=SC2086
	sent=$("$LOADGEN" --port "$AGENT_PORT" --unique --type c $args \
		--lines-per-datagram "$LPD" --lines "$MEM_CONTEXTS" --rate "$MEM_RATE")
	echo "$sent" > "$out.loadgen"
	sleep "$SETTLE"
	wait_stable agent_packets
	after=$(rss_kb "$AGENT_PID" VmRSS); hwm=$(rss_kb "$AGENT_PID" VmHWM)
	if ! st=$(status_json "$AGENT_SPORT"); then
		echo "run.sh: memory $1: agent status unavailable, see $OUT/memory-$1.agent.d/stderr" >&2
		stop_agent
		return
	fi
	echo "$st" > "$out.status.json"
	stop_agent
	ctx=$(jget aggregator.contexts <<<"$st")
	MEMROWS+=("$(printf '%-8s %10s %10s %10s %8s %10s %10s %10s %8s %8s' "$1" \
		"$(kv lines_sent "$sent")" "$ctx" "$(jget dogstatsd.kernel_drops <<<"$st")" \
		"$before" "$after" "$hwm" "$(jget aggregator.memory_bytes <<<"$st")" \
		"$(awk -v a="$after" -v b="$before" -v c="$ctx" 'BEGIN { printf "%.0f", (c > 0 ? (a - b) * 1024 / c : 0) }')" \
		"$(awk -v m="$(jget aggregator.memory_bytes <<<"$st")" -v c="$ctx" 'BEGIN { printf "%.0f", (c > 0 ? m / c : 0) }')")")
}

run_flush() {
	local st0 st1 sent out=$OUT/flush.agent
	start_agent flush || { echo "flush: agent did not start" >&2; return; }
	"$LOADGEN" --port "$AGENT_PORT" --unique --type c --tags-per-line "$TAGS" \
		--lines-per-datagram "$LPD" --lines "$MEM_CONTEXTS" --rate "$MEM_RATE" > "$out.fill"
	wait_stable agent_packets
	st0=$(status_json "$AGENT_SPORT")
	sent=$("$LOADGEN" --port "$AGENT_PORT" --lines-per-datagram "$LPD" --contexts "$CONTEXTS" \
		--tags-per-line "$TAGS" --type "$TYPE" --seed 2 --senders "$SENDERS" \
		--rate "$FLUSH_RATE" --duration "$FLUSH_DURATION")
	echo "$sent" > "$out.loadgen"
	sleep "$SETTLE"
	wait_stable agent_packets
	st1=$(status_json "$AGENT_SPORT") || { echo "flush: agent status unavailable" >&2; stop_agent; return; }
	echo "$st1" > "$out.status.json"
	stop_agent
	local l0 l1 k0 k1 f0 f1
	l0=$(jget dogstatsd.lines <<<"$st0"); l1=$(jget dogstatsd.lines <<<"$st1")
	k0=$(jget dogstatsd.kernel_drops <<<"$st0"); k1=$(jget dogstatsd.kernel_drops <<<"$st1")
	f0=$(jget flushes <<<"$st0"); f1=$(jget flushes <<<"$st1")
	FLUSHROW=$(printf 'flush: %s live contexts; during %s s at %s lines/s: sent %s, received %s, lost %s, kernel drops %s, flushes %s' \
		"$(jget aggregator.contexts <<<"$st1")" "$FLUSH_DURATION" "$FLUSH_RATE" \
		"$(kv lines_sent "$sent")" $((l1 - l0)) $(($(kv lines_sent "$sent") - (l1 - l0))) \
		$((k1 - k0)) $((f1 - f0)))
	FLUSHROW+=$(printf '\n       last flush on the main thread %s s wall, %s s CPU; receiving held up by the last collect %s s (pipelines=%s)' \
		"$(jget last_flush_duration_s <<<"$st1")" "$(jget last_flush_cpu_s <<<"$st1")" \
		"$(jget pipelines.last_collect_s <<<"$st1")" "$PIPELINES")
	if [ -n "$VM_URL" ]; then
		FLUSHROW+=$(printf '\n       intake: points submitted %s, delivered %s, queued %s, payloads %s, bytes sent %s' \
			"$(jget forwarder.points_submitted <<<"$st1")" "$(jget forwarder.points_delivered <<<"$st1")" \
			"$(jget forwarder.points_queued <<<"$st1")" "$(jget forwarder.payloads_delivered <<<"$st1")" \
			"$(jget forwarder.bytes_sent <<<"$st1")")
	fi
}

run_status() {
	local st0 st1 sent times out=$OUT/status.agent
	EXTRA_YAML="dogstatsd_flush_interval: 3600${EXTRA_YAML:+\n$EXTRA_YAML}" start_agent status ||
		{ echo "status: agent did not start" >&2; return; }
	"$LOADGEN" --port "$AGENT_PORT" --unique --type c --tags-per-line "$TAGS" \
		--lines-per-datagram "$LPD" --lines "$MEM_CONTEXTS" --rate "$MEM_RATE" > "$out.fill"
	wait_stable agent_packets
	st0=$(status_json "$AGENT_SPORT")
	(for _ in $(seq $((DURATION * 2))); do
		curl -s -o /dev/null --max-time 5 -w '%{time_total}\n' "http://127.0.0.1:$AGENT_SPORT/status"
		sleep 0.5
	done) > "$out.times" &
	local poller=$!
	sent=$("$LOADGEN" --port "$AGENT_PORT" --lines-per-datagram "$LPD" --contexts "$CONTEXTS" \
		--tags-per-line "$TAGS" --type "$TYPE" --seed 2 --rate "$FLUSH_RATE" --duration "$DURATION")
	wait "$poller" || true
	sleep "$SETTLE"
	wait_stable agent_packets
	st1=$(status_json "$AGENT_SPORT") || { echo "status: agent status unavailable" >&2; stop_agent; return; }
	stop_agent
	local l0 l1 k0 k1
	l0=$(jget dogstatsd.lines <<<"$st0"); l1=$(jget dogstatsd.lines <<<"$st1")
	k0=$(jget dogstatsd.kernel_drops <<<"$st0"); k1=$(jget dogstatsd.kernel_drops <<<"$st1")
	times=$(sort -n "$out.times" | awk '{ v[NR] = $1 } END { if (NR) printf "median %.3f s, max %.3f s over %d", v[int((NR + 1) / 2)], v[NR], NR }')
	STATUSROW=$(printf 'status: %s live contexts; %s lines/s for %s s with GET /status every 0.5 s (%s): sent %s, received %s, lost %s, kernel drops %s' \
		"$(jget aggregator.contexts <<<"$st1")" "$FLUSH_RATE" "$DURATION" "$times" \
		"$(kv lines_sent "$sent")" $((l1 - l0)) $(($(kv lines_sent "$sent") - (l1 - l0))) $((k1 - k0)))
}

MEMROWS=()
FLUSHROW=
STATUSROW=
for s in "${SCENARIOS[@]}"; do
	if [ "$s" = memory ]; then
		if [ $RUN_AGENT = 1 ]; then
			for w in $MEM_WORKLOADS; do run_memory "$w"; done
		fi
		continue
	fi
	if [ "$s" = flush ]; then
		[ $RUN_AGENT = 1 ] && run_flush
		continue
	fi
	if [ "$s" = status ]; then
		[ $RUN_AGENT = 1 ] && run_status
		continue
	fi
	for _ in $(seq "$REPEAT"); do
		[ $RUN_BASELINE = 1 ] && run_baseline "$s"
		if [ $RUN_BASELINE = 1 ] && [ -n "${WORK:-}" ]; then
			for w in ${WORK//,/ }; do run_baseline "$s" "$w"; done
		fi
		[ $RUN_AGENT = 1 ] && run_agent "$s"
	done
done

echo "# $(date -u +%Y-%m-%dT%H:%MZ) nproc=$(nproc) cpu=\"$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)\""
echo "# LPD=$LPD TAGS=$TAGS CONTEXTS=$CONTEXTS TYPE=$TYPE RCVBUF=$RCVBUF BURST_LINES=$BURST_LINES DURATION=$DURATION PIPELINES=$PIPELINES SENDERS=$SENDERS raw: $OUT"
printf '%-8s %-9s %12s %12s %10s %10s %8s %9s %9s %7s%s\n' scenario receiver lines_sent lines_recv lost \
	kdrops cpu_s ns/line usr/line ratio "$([ "${QDEPTH:-0}" = 1 ] && echo ' maxq_KiB')"
for r in "${ROWS[@]}"; do echo "$r"; done
for s in "${!RATIOS[@]}"; do
	# shellcheck disable=SC2086
	printf '%s\n' ${RATIOS[$s]} | sort -n | awk -v s="$s" '{ v[NR] = $1 }
		END { if (NR > 1) printf "ratio %s: median %.2f (min %.2f, max %.2f) over %d pairs\n",
			s, v[int((NR + 1) / 2)], v[1], v[NR], NR }'
done
if [ ${#MEMROWS[@]} -gt 0 ]; then
	echo "memory: MEM_CONTEXTS=$MEM_CONTEXTS unique counter contexts per workload (names: plain unique names;"
	echo "        tags: a distinct $TAGS-tag set per context; shared: each tag set shared by 10 contexts)"
	printf '%-8s %10s %10s %10s %8s %10s %10s %10s %8s %8s\n' workload lines_sent contexts kdrops \
		rss0_KiB rss1_KiB hwm_KiB aggr_bytes B/ctx aggrB/ctx
	for r in "${MEMROWS[@]}"; do echo "$r"; done
	echo "        B/ctx: RSS growth per live context; aggrB/ctx: aggregator.memory_bytes per context"
fi
[ -n "$FLUSHROW" ] && echo "$FLUSHROW"
[ -n "$STATUSROW" ] && echo "$STATUSROW"
exit 0
