#!/usr/bin/env bash
# bench-pocketbase.sh: REST and write → event, Tandem against PocketBase
# (examples/base, latest), alternately A/B/A/B on this machine, loopback
# only, the same clients for both.
#
# Per repeat it starts a fresh PocketBase (127.0.0.1, a temp --dir, a
# superuser made with `base superuser upsert`, a collection "bench" with
# public list/view/create rules and one record, all through its REST API)
# and a fresh `tandem serve` (127.0.0.1, fresh data dir, --rate-limit 0,
# caps off; collection "bench" and resource bench-get over REST), waits for
# the machine to be idle and runs, against each in turn:
#   - wrk -t2 -c64 -d10s --latency on GET one record / resource;
#   - the same on create (POST, a wrk Lua script per server);
#   - unless --no-w2e, write → event over SSE with scripts/sse-w2e (one
#     client for both: Tandem's GET /v1/events, PocketBase's /api/realtime
#     with its clientId subscription), creates at --w2e-rate/s.
# It stops only what it started, by PID, and prints every run, a table
# and the Tandem/PocketBase ratios.
#
# Usage: scripts/bench-pocketbase.sh [flags]
#   --repeats N         A/B pairs (default 3)
#   --duration D        wrk duration, e.g. 10s (default 10s)
#   --connections N     wrk -c (default 64); --threads N wrk -t (default 2)
#   --w2e-rate R        write → event creates/s (default 1000); --w2e-duration D (default 10s)
#   --w2e-subs N        SSE subscribers (default 1)
#   --no-w2e            skip write → event
#   --tandem-args ARGS  extra `tandem serve` flags
#   --idle-min PCT, --idle-wait S, --strict-idle, --keep   as in bench-compare.sh
# Env: TANDEM (a tandem binary; default: built from this checkout),
#      POCKETBASE (a PocketBase binary; default: installed into the cache),
#      TANDEM_BENCH_CACHE (default ~/.cache/tandem-bench).
# PocketBase v0.40 needs Go ≥ 1.27: the install runs with GOTOOLCHAIN=go1.27.3
# unless GOTOOLCHAIN is set.

source "$(dirname "${BASH_SOURCE[0]}")/bench-lib.sh"

REPEATS=3 DURATION=10s CONNS=64 THREADS=2 W2E_RATE=1000 W2E_DURATION=10s W2E_SUBS=1 W2E=1 TANDEM_ARGS=""
IDLE_MIN=90 IDLE_WAIT=120 STRICT_IDLE=0
while (($#)); do
	case $1 in
	--repeats) REPEATS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--connections) CONNS=$2; shift ;;
	--threads) THREADS=$2; shift ;;
	--w2e-rate) W2E_RATE=$2; shift ;;
	--w2e-duration) W2E_DURATION=$2; shift ;;
	--w2e-subs) W2E_SUBS=$2; shift ;;
	--no-w2e) W2E=0 ;;
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

command -v wrk >/dev/null || die "wrk is not installed (apt-get install -y wrk)"
init_work
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -z "${POCKETBASE:-}" ]]; then
	POCKETBASE=$CACHE/bin/base
	if [[ ! -x "$POCKETBASE" ]]; then
		log "installing PocketBase (examples/base@latest) into $CACHE/bin"
		mkdir -p "$CACHE/bin"
		GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3} GOBIN=$CACHE/bin go install github.com/pocketbase/pocketbase/examples/base@latest ||
			die "installing PocketBase failed"
	fi
fi
PB_VERSION=$(go version -m "$POCKETBASE" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/pocketbase/pocketbase" { print $3 }')
build_tandem
if ((W2E)); then
	log "building scripts/sse-w2e"
	(cd "$REPO/scripts/sse-w2e" && go build -o "$WORK/sse-w2e" .) || die "building sse-w2e failed"
fi

cat >"$WORK/pb-create.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"bench","n":1}'
EOF
cat >"$WORK/tandem-create.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"data":{"title":"bench","n":1}}'
EOF

# api METHOD URL BODY [AUTH]: curl, failing on a non-2xx; prints the body.
api() {
	local auth=()
	[[ -n "${4:-}" ]] && auth=(-H "Authorization: $4")
	curl -fsS --max-time 10 -X "$1" -H 'Content-Type: application/json' "${auth[@]}" -d "$3" "$2" ||
		die "$1 $2 failed"
}

# start_pocketbase: a fresh PocketBase with a superuser, collection "bench"
# (public list/view/create) and one record; sets PB_PID, PB_ADDR, PB_GET.
start_pocketbase() {
	local port dir token id
	port=$(free_port)
	dir=$(mktemp -d "$WORK/pb-data.XXXXXX")
	"$POCKETBASE" superuser upsert bench@example.com bench-password-123 --dir "$dir" >/dev/null ||
		die "creating the PocketBase superuser failed"
	# --automigrate=false and a migrations dir of its own: PocketBase would
	# otherwise write the API-made collection as a migration next to the
	# data dir, and the next repeat's fresh instance would apply it.
	start_bg "$dir.log" "$POCKETBASE" serve --http "127.0.0.1:$port" --dir "$dir" --dev=false --hooksWatch=false \
		--automigrate=false --migrationsDir "$dir/pb_migrations"
	PB_PID=$BG_PID
	PB_ADDR=127.0.0.1:$port
	wait_http "http://$PB_ADDR/api/health" "$PB_PID" 30 || { cat "$dir.log" >&2; die "PocketBase did not start"; }
	token=$(api POST "http://$PB_ADDR/api/collections/_superusers/auth-with-password" \
		'{"identity":"bench@example.com","password":"bench-password-123"}' | jq -r .token)
	api POST "http://$PB_ADDR/api/collections" '{"name":"bench","type":"base","listRule":"","viewRule":"","createRule":"",
		"fields":[{"name":"title","type":"text"},{"name":"n","type":"number"},{"name":"benchT","type":"text"}]}' "$token" >/dev/null
	id=$(api POST "http://$PB_ADDR/api/collections/bench/records" '{"title":"bench","n":1}' | jq -r .id)
	PB_GET=http://$PB_ADDR/api/collections/bench/records/$id
	curl -fsS -o /dev/null "$PB_GET" || die "GET $PB_GET failed"
}

# start_tandem_bench: start_tandem plus collection "bench" and resource
# bench-get; sets TANDEM_GET.
start_tandem_bench() {
	start_tandem "$TANDEM_ARGS"
	api POST "http://$TANDEM_ADDR/v1/collections" '{"name":"bench"}' >/dev/null
	api PUT "http://$TANDEM_ADDR/v1/collections/bench/resources/bench-get" '{"data":{"title":"bench","n":1}}' >/dev/null
	TANDEM_GET=http://$TANDEM_ADDR/v1/collections/bench/resources/bench-get
}

# run_wrk NAME ARGS...: one wrk run; sets WRK_RPS, WRK_P50, WRK_P99 (ms)
# and WRK_BAD (non-2xx replies and socket errors) and prints a line.
run_wrk() {
	local name=$1 out
	shift
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" 2>&1) || { echo "$out" >&2; die "wrk failed"; }
	WRK_RPS=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	WRK_P50=$(awk '$1 == "50%" { print $2 }' <<<"$out" | to_ms)
	WRK_P99=$(awk '$1 == "99%" { print $2 }' <<<"$out" | to_ms)
	WRK_BAD=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
	printf '%-26s req/s=%s p50=%sms p99=%sms errors=%s idle_before=%s%%\n' "$name" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$WRK_BAD" "$IDLE"
}

# to_ms converts wrk durations (812.00us, 1.23ms, 2.00s) to milliseconds.
to_ms() {
	awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v += 0; else if ($1 ~ /m$/) v *= 60000; else if ($1 ~ /s$/) v *= 1000; printf "%.3f\n", v }'
}

# field LINE KEY prints the value of KEY=… in a line.
field() { awk -v k="$2=" '{ for (i = 1; i <= NF; i++) if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }' <<<"$1"; }

declare -A GET GETP99 CRE CREP99 W2EP50 W2EP99 W2EDEL
printf 'bench-pocketbase: %s repeats; wrk -t%s -c%s -d%s; write → event %s/s for %s, %s SSE subscribers\n' \
	"$REPEATS" "$THREADS" "$CONNS" "$DURATION" "$W2E_RATE" "$W2E_DURATION" "$W2E_SUBS"
printf '%s; pocketbase %s; %s CPUs\n\n' "$("$TANDEM" version 2>/dev/null | head -1)" "${PB_VERSION:-?}" "$(nproc)"
for ((r = 1; r <= REPEATS; r++)); do
	for sys in tandem pocketbase; do
		if [[ $sys == tandem ]]; then
			start_tandem_bench
			pid=$TANDEM_PID get=$TANDEM_GET addr=$TANDEM_ADDR
			create=http://$TANDEM_ADDR/v1/collections/bench/resources lua=$WORK/tandem-create.lua
		else
			start_pocketbase
			pid=$PB_PID get=$PB_GET addr=$PB_ADDR
			create=http://$PB_ADDR/api/collections/bench/records lua=$WORK/pb-create.lua
		fi
		wait_idle "$IDLE_MIN" "$IDLE_WAIT" "$STRICT_IDLE"
		run_wrk "[$r] $sys GET" "$get"
		GET[$sys,$r]=$WRK_RPS GETP99[$sys,$r]=$WRK_P99
		wait_idle "$IDLE_MIN" "$IDLE_WAIT" "$STRICT_IDLE"
		run_wrk "[$r] $sys create" -s "$lua" "$create"
		CRE[$sys,$r]=$WRK_RPS CREP99[$sys,$r]=$WRK_P99
		if ((W2E)); then
			wait_idle "$IDLE_MIN" "$IDLE_WAIT" "$STRICT_IDLE"
			line=$("$WORK/sse-w2e" -proto "$sys" -addr "$addr" -collection bench -subs "$W2E_SUBS" -rate "$W2E_RATE" -d "$W2E_DURATION") ||
				die "sse-w2e against $sys failed"
			echo "[$r] $sys write→event $line idle_before=${IDLE}%"
			W2EP50[$sys,$r]=$(field "$line" p50) W2EP99[$sys,$r]=$(field "$line" p99) W2EDEL[$sys,$r]=$(field "$line" delivered)
			W2EP50[$sys,$r]=${W2EP50[$sys,$r]%ms} W2EP99[$sys,$r]=${W2EP99[$sys,$r]%ms}
		fi
		stop_pid "$pid"
	done
done

echo
printf '%-7s %-11s %10s %12s %10s %12s %12s %12s %16s\n' repeat system GET/s GET_p99_ms create/s create_p99_ms w2e_p50_ms w2e_p99_ms w2e_delivered
for ((r = 1; r <= REPEATS; r++)); do
	for sys in tandem pocketbase; do
		printf '%-7s %-11s %10s %12s %10s %12s %12s %12s %16s\n' "$r" "$sys" "${GET[$sys,$r]}" "${GETP99[$sys,$r]}" "${CRE[$sys,$r]}" \
			"${CREP99[$sys,$r]}" "${W2EP50[$sys,$r]:--}" "${W2EP99[$sys,$r]:--}" "${W2EDEL[$sys,$r]:--}"
	done
done
echo
echo "ratios, Tandem / PocketBase (per repeat; then of the means):"
for metric in GET GETP99 CRE CREP99 W2EP50 W2EP99; do
	declare -n M=$metric
	per=() ta=() pb=()
	for ((r = 1; r <= REPEATS; r++)); do
		per+=("$(ratio "${M[tandem,$r]:--}" "${M[pocketbase,$r]:--}")")
		ta+=("${M[tandem,$r]:--}") pb+=("${M[pocketbase,$r]:--}")
	done
	case $metric in
	GET) name="GET one record req/s (higher is better)" ;;
	GETP99) name="GET p99 (lower is better)" ;;
	CRE) name="create req/s (higher is better)" ;;
	CREP99) name="create p99 (lower is better)" ;;
	W2EP50) name="write-to-event p50 (lower is better)" ;;
	W2EP99) name="write-to-event p99 (lower is better)" ;;
	esac
	((W2E)) || [[ $metric != W2E* ]] || { unset -n M; continue; }
	printf '  %-42s %s  → %s\n' "$name" "${per[*]}" "$(ratio "$(mean "${ta[@]}")" "$(mean "${pb[@]}")")"
	unset -n M
done
echo
echo "Durability differs: Tandem commits with SQLite synchronous=FULL, PocketBase with synchronous=NORMAL (WAL)."
echo "Compare ratios, not absolute figures across runs; a run whose idle_before is low is not comparable."
