# Shared by the bench-*.sh comparison scripts (sourced, not run): a work
# directory, processes started by PID and stopped by PID, free loopback
# ports, the machine's idle share, and float arithmetic.

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TANDEM_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem-bench}
STARTED_PIDS=()
WORK=""
KEEP_WORK=0

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# cleanup stops every process this script started (by PID, nothing else)
# and removes the work directory unless --keep was given.
cleanup() {
	local pid
	for pid in "${STARTED_PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [[ -n "$WORK" && "$KEEP_WORK" == 0 ]]; then
		rm -rf "$WORK"
	elif [[ -n "$WORK" ]]; then
		log "work directory kept: $WORK"
	fi
}

init_work() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench-compare.XXXXXX")
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

# start_bg LOG CMD... runs CMD in the background with its output in LOG
# and sets BG_PID.
start_bg() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	BG_PID=$!
	STARTED_PIDS+=("$BG_PID")
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s; only PIDs this script
# started are ever passed here.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${STARTED_PIDS[@]}"; do
		[[ "$p" == "$pid" ]] || keep+=("$p")
	done
	STARTED_PIDS=("${keep[@]+"${keep[@]}"}")
}

# free_port prints a loopback TCP port nobody listens on.
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# wait_http URL PID SECONDS: until URL answers 2xx, PID dies, or timeout.
wait_http() {
	local url=$1 pid=$2 secs=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1
		curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# cpu_sample prints "busy total" jiffies of the whole machine (/proc/stat).
cpu_sample() {
	awk '/^cpu /{ idle = $5 + $6; total = 0; for (i = 2; i <= NF; i++) if (i < 10) total += $i; print total - idle, total; exit }' /proc/stat
}

# idle_pct SECONDS prints the machine's idle share over the next SECONDS.
idle_pct() {
	local b0 t0 b1 t1
	read -r b0 t0 < <(cpu_sample)
	sleep "$1"
	read -r b1 t1 < <(cpu_sample)
	awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { if (t <= 0) print 0; else printf "%.1f\n", 100 * (1 - b / t) }'
}

# wait_idle MIN_PCT MAX_WAIT_S STRICT: wait until the machine is at least
# MIN_PCT idle over 3 s. Past MAX_WAIT_S it warns and carries on, or with
# STRICT=1 fails. Sets IDLE to the last measurement.
wait_idle() {
	local min=$1 wait=$2 strict=$3 start=$SECONDS
	while :; do
		IDLE=$(idle_pct 3)
		if awk -v i="$IDLE" -v m="$min" 'BEGIN { exit !(i >= m) }'; then
			log "machine ${IDLE} % idle (load $(cut -d' ' -f1-3 /proc/loadavg))"
			return 0
		fi
		if ((SECONDS - start >= wait)); then
			[[ "$strict" == 1 ]] && die "machine only ${IDLE} % idle after ${wait} s (want ≥ ${min} %)"
			log "WARNING: machine only ${IDLE} % idle after ${wait} s (want ≥ ${min} %): figures of this run are not comparable"
			return 0
		fi
		log "machine ${IDLE} % idle (load $(cut -d' ' -f1-3 /proc/loadavg)); waiting for ≥ ${min} %"
	done
}

# calc EXPR evaluates a float expression with awk ("-" if it divides by 0).
calc() { awk "BEGIN { x = ($1); printf \"%.2f\\n\", x }" 2>/dev/null || echo "-"; }

# ratio A B prints A/B, or "-" if either is missing or B is 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

# mean V...: the mean of the numeric arguments ("-" if none).
mean() {
	printf '%s\n' "$@" | awk '$1 != "-" && $1 != "" { s += $1; n++ } END { if (n == 0) print "-"; else printf "%.2f\n", s / n }'
}

# build_tandem sets TANDEM to a binary built from this checkout, unless
# TANDEM is already set.
build_tandem() {
	if [[ -n "${TANDEM:-}" ]]; then
		[[ -x "$TANDEM" ]] || die "TANDEM=$TANDEM is not executable"
		return
	fi
	log "building tandem from $REPO"
	(cd "$REPO" && go build -o "$WORK/tandem" ./cmd/tandem) || die "go build ./cmd/tandem failed"
	TANDEM=$WORK/tandem
}

# start_tandem EXTRA_ARGS: `tandem serve` on a free loopback port with a
# fresh data directory and the bench's settings (no rate limit, caps off);
# sets TANDEM_PID and TANDEM_ADDR.
start_tandem() {
	local extra=$1 port dir
	port=$(free_port)
	dir=$(mktemp -d "$WORK/tandem-data.XXXXXX")
	# shellcheck disable=SC2086 # extra args are split on purpose
	start_bg "$dir.log" "$TANDEM" serve --addr "127.0.0.1:$port" --data-dir "$dir" --rate-limit 0 \
		--max-conns-per-ip 0 --max-subscriptions-per-principal 0 --max-subscriptions 0 --log-level warn $extra
	TANDEM_PID=$BG_PID
	TANDEM_ADDR=127.0.0.1:$port
	wait_http "http://$TANDEM_ADDR/healthz" "$TANDEM_PID" 30 || { cat "$dir.log" >&2; die "tandem did not start"; }
}
