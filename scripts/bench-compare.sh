#!/usr/bin/env bash
# bench-compare.sh: fan-out, Tandem against Centrifugo v6.9.1, with the same
# client (the side-by-side harness in ../shared/bench/fanout), alternately
# A/B/A/B on this machine, loopback only.
#
# Per repeat it starts a fresh `tandem serve` (127.0.0.1, fresh data dir,
# --rate-limit 0, connection and subscription caps off, as `tandem bench`
# does) and a fresh Centrifugo (the harness's centrifugo.json on a free
# port), waits for the machine to be idle, runs the harness against each in
# turn and stops it again (by PID; nothing it did not start). With
# --rss-conns > 0 it then does the same with -rate 0 (idle subscribed
# connections: RSS per connection). It prints every run's harness line, a
# table, and the Tandem/Centrifugo ratios.
#
# Usage: scripts/bench-compare.sh [flags]
#   --repeats N         A/B pairs (default 3)
#   --subscribers N     subscribers per run (default 9000)
#   --rate R            publishes/s (default 20)
#   --duration D        publishing time, Go duration (default 10s)
#   --publishers N      publishes in flight (harness -publishers, default 1)
#   --dialers N         parallel dialers (default 4)
#   --rss-conns N       idle connections for the RSS runs (default: --subscribers; 0: skip)
#   --tandem-args ARGS  extra `tandem serve` flags, e.g. "--ws-readers goroutine"
#   --idle-min PCT      idle share to wait for before each run (default 90)
#   --idle-wait S       longest wait for it, then warn and go on (default 120)
#   --strict-idle       fail instead of warning when the machine is not idle
#   --keep              keep the work directory (server logs)
# Env: TANDEM (a tandem binary; default: built from this checkout),
#      FANOUT_SRC (the harness; default ../shared/bench/fanout),
#      TANDEM_BENCH_CACHE (where centrifugo is cached; default ~/.cache/tandem-bench).

source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

CENTRIFUGO_VERSION=v6.9.1
REPEATS=3 SUBS=9000 RATE=20 DURATION=10s PUBLISHERS=1 DIALERS=4 RSS_CONNS="" TANDEM_ARGS=""
IDLE_MIN=90 IDLE_WAIT=120 STRICT_IDLE=0
while (($#)); do
	case $1 in
	--repeats) REPEATS=$2; shift ;;
	--subscribers) SUBS=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--publishers) PUBLISHERS=$2; shift ;;
	--dialers) DIALERS=$2; shift ;;
	--rss-conns) RSS_CONNS=$2; shift ;;
	--tandem-args) TANDEM_ARGS=$2; shift ;;
	--idle-min) IDLE_MIN=$2; shift ;;
	--idle-wait) IDLE_WAIT=$2; shift ;;
	--strict-idle) STRICT_IDLE=1 ;;
	--keep) KEEP_WORK=1 ;;
	-h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown flag $1 (see --help)" ;;
	esac
	shift
done
RSS_CONNS=${RSS_CONNS:-$SUBS}
FANOUT_SRC=${FANOUT_SRC:-$REPO/../shared/bench/fanout}
[[ -f "$FANOUT_SRC/main.go" ]] || die "no harness at $FANOUT_SRC (set FANOUT_SRC)"

init_work
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The harness, built from a copy (its source directory may be read-only).
log "building the harness from $FANOUT_SRC"
cp -r "$FANOUT_SRC" "$WORK/fanout"
(cd "$WORK/fanout" && go build -o "$WORK/fanout-client" .) || die "building the harness failed"
FANOUT=$WORK/fanout-client

# Centrifugo, installed once into the cache.
CENTRIFUGO=$CACHE/bin/centrifugo
if ! go version -m "$CENTRIFUGO" 2>/dev/null | grep -q "github.com/centrifugal/centrifugo/v6[[:space:]]*$CENTRIFUGO_VERSION"; then
	log "installing centrifugo $CENTRIFUGO_VERSION into $CACHE/bin (takes a few minutes)"
	mkdir -p "$CACHE/bin"
	GOBIN=$CACHE/bin go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION" || die "installing centrifugo failed"
fi
build_tandem

# start_centrifugo: a fresh Centrifugo with the harness's config on a free
# loopback port; sets CF_PID and CF_ADDR.
start_centrifugo() {
	local port cfg
	port=$(free_port)
	cfg=$(mktemp "$WORK/centrifugo.XXXXXX.json")
	jq --argjson p "$port" '.http_server.address = "127.0.0.1" | .http_server.port = $p
		| .client.allowed_origins = ["http://127.0.0.1:\($p)"] | .log.level = "warn"' "$FANOUT_SRC/centrifugo.json" >"$cfg"
	start_bg "$cfg.log" "$CENTRIFUGO" --config "$cfg"
	CF_PID=$BG_PID
	CF_ADDR=127.0.0.1:$port
	wait_http "http://$CF_ADDR/health" "$CF_PID" 30 || { cat "$cfg.log" >&2; die "centrifugo did not start"; }
}

# field LINE KEY prints the value of KEY=… in a harness line.
field() { awk -v k="$2=" '{ for (i = 1; i <= NF; i++) if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }' <<<"$1"; }

# run_one SYSTEM RATE CONNS: a fresh server, an idle check, one harness
# run; sets RUN_LINE to the harness line (no subshell, so the server's PID
# stays in this shell's list to stop).
run_one() {
	local sys=$1 rate=$2 conns=$3 pid addr out
	if [[ $sys == tandem ]]; then
		start_tandem "$TANDEM_ARGS"
		pid=$TANDEM_PID addr=$TANDEM_ADDR
	else
		start_centrifugo
		pid=$CF_PID addr=$CF_ADDR
	fi
	wait_idle "$IDLE_MIN" "$IDLE_WAIT" "$STRICT_IDLE"
	local idle=$IDLE
	out=$("$FANOUT" -proto "$sys" -addr "$addr" -channel bench:fan -c "$conns" -rate "$rate" -d "$DURATION" \
		-pid "$pid" -dialers "$DIALERS" -publishers "$PUBLISHERS" 2>"$WORK/$sys.stderr") || {
		cat "$WORK/$sys.stderr" >&2
		stop_pid "$pid"
		die "harness run against $sys failed"
	}
	stop_pid "$pid"
	RUN_LINE="$out idle_before=${idle}%"
}

declare -A DPS P99 CPUD DELIV RSS
printf 'bench-compare: %s repeats, %s subscribers, %s/s for %s, %s publishers in flight, tandem args "%s"\n' \
	"$REPEATS" "$SUBS" "$RATE" "$DURATION" "$PUBLISHERS" "$TANDEM_ARGS"
printf '%s; centrifugo %s; %s CPUs\n\n' "$("$TANDEM" version 2>/dev/null | head -1)" "$CENTRIFUGO_VERSION" "$(nproc)"
for ((r = 1; r <= REPEATS; r++)); do
	for sys in tandem centrifugo; do
		run_one "$sys" "$RATE" "$SUBS"
		line=$RUN_LINE
		echo "[$r fanout] $line"
		got=$(field "$line" delivered); got=${got%%/*}
		cpu=$(field "$line" server_cpu); cpu=${cpu%%s(*}
		DPS[$sys,$r]=$(field "$line" deliveries/s)
		P99[$sys,$r]=$(field "$line" p99); P99[$sys,$r]=${P99[$sys,$r]%ms}
		DELIV[$sys,$r]=$(field "$line" delivered)
		CPUD[$sys,$r]=$(awk -v c="$cpu" -v n="$got" 'BEGIN { if (n + 0 == 0 || c == "n/a") print "-"; else printf "%.2f\n", c * 1e6 / n }')
	done
	if ((RSS_CONNS > 0)); then
		for sys in tandem centrifugo; do
			run_one "$sys" 0 "$RSS_CONNS"
			line=$RUN_LINE
			echo "[$r idle]   $line"
			RSS[$sys,$r]=$(field "$line" rss_per_conn); RSS[$sys,$r]=${RSS[$sys,$r]%KiB}
		done
	fi
done

echo
printf '%-7s %-11s %14s %10s %18s %15s %14s\n' repeat system deliveries/s p99_ms cpu_us/delivery delivered rss_KiB/conn
for ((r = 1; r <= REPEATS; r++)); do
	for sys in tandem centrifugo; do
		printf '%-7s %-11s %14s %10s %18s %15s %14s\n' "$r" "$sys" "${DPS[$sys,$r]}" "${P99[$sys,$r]}" "${CPUD[$sys,$r]}" "${DELIV[$sys,$r]}" "${RSS[$sys,$r]:--}"
	done
done
echo
echo "ratios, Tandem / Centrifugo (per repeat; then of the means):"
for metric in DPS P99 CPUD RSS; do
	declare -n M=$metric
	per=() ta=() ce=()
	for ((r = 1; r <= REPEATS; r++)); do
		per+=("$(ratio "${M[tandem,$r]:--}" "${M[centrifugo,$r]:--}")")
		ta+=("${M[tandem,$r]:--}") ce+=("${M[centrifugo,$r]:--}")
	done
	case $metric in
	DPS) name="deliveries/s (higher is better)" ;;
	P99) name="delivery p99 (lower is better)" ;;
	CPUD) name="server CPU per delivery (lower is better)" ;;
	RSS) name="RSS per idle subscribed connection (lower is better)" ;;
	esac
	printf '  %-52s %s  → %s\n' "$name" "${per[*]}" "$(ratio "$(mean "${ta[@]}")" "$(mean "${ce[@]}")")"
	unset -n M
done
echo
echo "Compare ratios, not absolute figures across runs; a run whose idle_before is low is not comparable."
