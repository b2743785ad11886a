#!/usr/bin/env bash
# testenv.sh — throwaway real servers for linkdr's tests (see docs/testing.md).
#
#   scripts/testenv.sh up [COMPONENT...]    install what is missing, start what is not running
#   scripts/testenv.sh down [COMPONENT...]  stop servers, remove their state (keeps .testenv/bin)
#   scripts/testenv.sh status               one line per component
#   scripts/testenv.sh env                  print .testenv/env
#
# Components: pg redis s3 k8s dns prom tools (default: all).
# Every server runs on 127.0.0.1 on a free port, in the foreground as a direct child of this
# script (so $! is the server's pid), and keeps running after the script exits.
set -Eeuo pipefail

readonly ALL_COMPONENTS=(pg redis s3 k8s dns prom tools)
readonly PG_MAJOR=15
readonly PG_BINDIR=/usr/lib/postgresql/${PG_MAJOR}/bin
readonly VERSITYGW_VERSION=v1.8.0
readonly KUBE_VERSION=v1.34.4
readonly S3_REGION=us-east-1
readonly S3_ACCESS_KEY=linkdr-test-access
readonly S3_SECRET_KEY=linkdr-test-secret-0123456789
readonly DNS_ZONE=linkapp.test.
readonly DNS_TSIG_NAME=linkdr-ddns.
readonly READY_TIMEOUT=60 # seconds to wait for any one server to become ready

# --- paths -----------------------------------------------------------------------------------

find_root() {
	local d
	d=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
	while [[ $d != / && ! -f $d/go.mod ]]; do d=$(dirname "$d"); done
	[[ -f $d/go.mod ]] || {
		echo "testenv: no go.mod above $0" >&2
		exit 1
	}
	printf '%s\n' "$d"
}
ROOT=$(find_root)
readonly ROOT
readonly TE=$ROOT/.testenv
readonly BIN=$TE/bin
readonly BUILD=$TE/build

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	PATH=$PATH:/usr/local/go/bin
fi
export PATH=$PATH:/usr/sbin:/sbin

# --- output ----------------------------------------------------------------------------------

say() { printf 'testenv: %s\n' "$*"; }
warn() { printf 'testenv: %s\n' "$*" >&2; }

# fail WHAT LOG MESSAGE: report a failed step with the tail of its log, then exit 1.
fail() {
	local what=$1 log=$2
	shift 2
	warn "$what: $*"
	if [[ -s $log ]]; then
		warn "---- last lines of $log ----"
		tail -n 60 "$log" >&2
		warn "----"
	fi
	exit 1
}

trap 'warn "unexpected failure at line $LINENO: $BASH_COMMAND"' ERR

# --- processes -------------------------------------------------------------------------------

# alive PID: the process exists and is not a zombie (PID 1 here reaps orphans late).
alive() {
	local pid=${1:-} stat state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	state=${stat%% *}
	[[ $state != Z && $state != X ]]
}

# alive_dir DIR: the server whose pid is in DIR/pid is alive.
alive_dir() { [[ -f $1/pid ]] && alive "$(<"$1/pid")"; }

# start_server DIR CMD...: run CMD in the background with its own session, output to DIR/log,
# pid to DIR/pid. setsid and setpriv exec in place, so $! is the server itself.
start_server() {
	local dir=$1
	shift
	: >"$dir/log"
	setsid "$@" </dev/null >>"$dir/log" 2>&1 9>&- &
	echo "$!" >"$dir/pid"
}

# wait_ready NAME DIR CMD...: poll CMD until it succeeds; fail if the server dies or times out.
wait_ready() {
	local name=$1 dir=$2 deadline=$((SECONDS + READY_TIMEOUT))
	shift 2
	until "$@" >/dev/null 2>&1; do
		alive_dir "$dir" || fail "$name" "$dir/log" "exited while starting"
		((SECONDS < deadline)) || fail "$name" "$dir/log" "not ready after ${READY_TIMEOUT}s"
		sleep 0.05
	done
}

# stop_pid PID SIGNAL: signal, wait up to 30 s for it to go, then SIGKILL.
stop_pid() {
	local pid=$1 sig=$2 i
	alive "$pid" || return 0
	kill "-$sig" "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 600; i++)); do
		alive "$pid" || return 0
		sleep 0.05
	done
	warn "pid $pid ignored SIG$sig for 30s, killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# stop_component NAME [keep-ports]: stop every server under .testenv/NAME (postgres gets
# SIGINT = fast shutdown, others SIGTERM), then remove its state; with keep-ports, keep the port files so a
# restarted server gets its old port back when it is still free.
stop_component() {
	local c=$1 keep=${2:-} sig=TERM pidfile
	if [[ $c == pg ]]; then sig=INT; fi
	if [[ -d $TE/$c ]]; then
		# Newest pid file first: stop in reverse start order (the API server before etcd,
		# the standby before the primary).
		while read -r _ pidfile; do
			stop_pid "$(<"$pidfile")" "$sig"
		done < <(find "$TE/$c" -name pid -type f -printf '%T@ %p\n' | sort -rn)
		if [[ -n $keep ]]; then
			find "$TE/$c" -mindepth 1 -depth \( -type d -empty -o ! -type d ! -name port \) -delete
		else
			rm -rf "${TE:?}/$c"
		fi
	fi
	[[ $c != pg ]] || rm -rf "$(pg_socket_dir)"
}

# --- ports -----------------------------------------------------------------------------------

declare -A TAKEN=()

# load_taken_ports: every local TCP/UDP port in use now, from /proc/net. TIME_WAIT (06)
# does not count: the servers bind with SO_REUSEADDR, and a restarted server's old port is
# full of them.
load_taken_ports() {
	local f line hex state
	TAKEN=()
	for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do
		[[ -r $f ]] || continue
		while read -r _ line _ state _; do
			hex=${line##*:}
			if [[ $hex =~ ^[0-9A-F]{4}$ && $state != 06 ]]; then TAKEN[$((16#$hex))]=1; fi
		done <"$f"
	done
}

port_free() { [[ -z ${TAKEN[$1]:-} ]]; }

# pick_port DIR [BUS]: reuse DIR/port if still free, else a random free port below the
# ephemeral range; with BUS, PORT+10000 must be free too (Redis Cluster bus). Writes DIR/port.
pick_port() {
	local dir=$1 bus=${2:-} p lo=10000 hi i
	read -r hi _ </proc/sys/net/ipv4/ip_local_port_range
	hi=$((hi - 1))
	[[ -n $bus ]] && hi=$((hi < 55535 ? hi : 55535))
	if [[ -f $dir/port ]]; then
		p=$(<"$dir/port")
		if port_free "$p" && { [[ -z $bus ]] || port_free $((p + 10000)); }; then
			TAKEN[$p]=1
			if [[ -n $bus ]]; then TAKEN[$((p + 10000))]=1; fi
			return 0
		fi
	fi
	for ((i = 0; i < 1000; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
		port_free "$p" || continue
		[[ -z $bus ]] || port_free $((p + 10000)) || continue
		TAKEN[$p]=1
		if [[ -n $bus ]]; then TAKEN[$((p + 10000))]=1; fi
		echo "$p" >"$dir/port"
		return 0
	done
	warn "no free port found"
	exit 1
}

# --- installation ----------------------------------------------------------------------------

# Each entry: "package:file that proves it is installed".
pkgs_for() {
	case $1 in
	pg) echo "postgresql-$PG_MAJOR:$PG_BINDIR/postgres postgresql-client-$PG_MAJOR:$PG_BINDIR/pg_dump" \
		"postgresql-contrib:/usr/share/postgresql/$PG_MAJOR/extension/pg_stat_statements.control" \
		"util-linux:/usr/bin/setpriv" ;;
	redis) echo "redis-server:/usr/bin/redis-server redis-tools:/usr/bin/redis-cli" ;;
	s3) echo "curl:/usr/bin/curl" ;;
	k8s) echo "curl:/usr/bin/curl openssl:/usr/bin/openssl" ;;
	dns) echo "bind9:/usr/sbin/named bind9-utils:/usr/sbin/tsig-keygen bind9-dnsutils:/usr/bin/dig" ;;
	prom) echo "prometheus:/usr/bin/prometheus" ;;
	tools) echo "age:/usr/bin/age zstd:/usr/bin/zstd pgbackrest:/usr/bin/pgbackrest" \
		"postgresql-client-$PG_MAJOR:$PG_BINDIR/pg_restore redis-tools:/usr/bin/redis-cli" \
		"bind9-dnsutils:/usr/bin/dig chromium:/usr/bin/chromium curl:/usr/bin/curl" \
		"iproute2:/usr/bin/ss" ;;
	esac
}

install_packages() {
	local c entry missing=() log=$TE/apt.log rc=0 made_policy=
	for c in "$@"; do
		for entry in $(pkgs_for "$c"); do
			[[ -e ${entry#*:} ]] && continue
			[[ " ${missing[*]} " == *" ${entry%%:*} "* ]] || missing+=("${entry%%:*}")
		done
	done
	((${#missing[@]})) || return 0
	say "installing ${missing[*]} (log: $log)"
	# Never let a package's postinst start its default instance.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	} >"$log" 2>&1 || rc=$?
	[[ -z $made_policy ]] || rm -f /usr/sbin/policy-rc.d
	((rc == 0)) || fail "apt-get install" "$log" "failed (exit $rc)"
}

# gobin_has BINARY KIND PATH VERSION: `go version -m` of BINARY lists module PATH at VERSION.
gobin_has() {
	[[ -x $1 ]] && go version -m "$1" 2>/dev/null | awk -v k="$2" -v p="$3" -v v="$4" \
		'$1 == k && $2 == p && $3 == v { found = 1 } END { exit !found }'
}

build_versitygw() {
	gobin_has "$BIN/versitygw" mod github.com/versity/versitygw "$VERSITYGW_VERSION" && return 0
	local log=$BUILD/versitygw.log
	mkdir -p "$BIN" "$BUILD"
	say "building versitygw $VERSITYGW_VERSION (log: $log)"
	GOBIN=$BIN GOFLAGS=-buildvcs=false go install \
		"github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >"$log" 2>&1 ||
		fail "build versitygw" "$log" "go install failed"
}

# build_kube: kube-apiserver and etcd from a tools module generated under .testenv/build/kube.
# k8s.io/kubernetes replaces its staging modules with ./staging/..., so the tools module maps
# each of them (read from the downloaded go.mod) to its published v0.X.Y version; etcd is the
# version that Kubernetes release requires.
build_kube() {
	local kube_mod=k8s.io/kubernetes
	if gobin_has "$BIN/kube-apiserver" mod "$kube_mod" "$KUBE_VERSION" && [[ -x $BIN/etcd ]] &&
		[[ $(cat "$BIN/etcd.kube-version" 2>/dev/null) == "$KUBE_VERSION" ]]; then
		return 0
	fi
	local dir=$BUILD/kube log=$BUILD/kube.log gomod staging etcd_version go_version m
	local minor=${KUBE_VERSION#v1.}
	minor=${minor%%.*}
	mkdir -p "$BIN" "$dir/etcd"
	say "building kube-apiserver $KUBE_VERSION and etcd (log: $log)"
	: >"$log"
	gomod=$(cd / && GOFLAGS='' go list -m -f '{{.GoMod}}' "$kube_mod@$KUBE_VERSION" 2>>"$log") ||
		fail "build kube" "$log" "cannot download the $kube_mod $KUBE_VERSION go.mod"
	staging=$(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$gomod")
	etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$gomod")
	go_version=$(awk '$1 == "go" { print $2; exit }' "$gomod")
	[[ -n $staging && -n $etcd_version ]] || fail "build kube" "$gomod" "unexpected go.mod"
	{
		echo "// Generated by scripts/testenv.sh: builds kube-apiserver and etcd for tests."
		echo "module linkdr.test/kubetools"
		echo
		echo "go $go_version"
		echo
		echo "require $kube_mod $KUBE_VERSION"
		echo
		echo "replace ("
		for m in $staging; do
			echo "	$m => $m v0.${KUBE_VERSION#v1.}"
		done
		echo ")"
	} >"$dir/go.mod"
	cat >"$dir/etcd/main.go" <<'EOF'
// Command etcd is the etcd server, built at the version Kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
	(
		cd "$dir"
		export GOFLAGS=-buildvcs=false GOWORK=off
		go get "$kube_mod/cmd/kube-apiserver@$KUBE_VERSION" \
			"go.etcd.io/etcd/server/v3/etcdmain@$etcd_version"
		go build -trimpath -o "$BIN/kube-apiserver" -ldflags "-s -w \
			-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
			-X k8s.io/component-base/version.gitMajor=1 \
			-X k8s.io/component-base/version.gitMinor=$minor \
			-X k8s.io/component-base/version.gitTreeState=clean" \
			"$kube_mod/cmd/kube-apiserver"
		go build -trimpath -o "$BIN/etcd" -ldflags "-s -w" ./etcd
	) >>"$log" 2>&1 || fail "build kube" "$log" "go build failed"
	echo "$KUBE_VERSION" >"$BIN/etcd.kube-version"
}

# --- permissions -----------------------------------------------------------------------------

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# ensure_postgres_can_reach DIR: the postgres OS user must be able to traverse down to DIR.
ensure_postgres_can_reach() {
	local d=$1
	as_postgres test -x "$d" 2>/dev/null && return 0
	while [[ $d != / ]]; do
		if [[ $(stat -c %a "$d") != *[1357] ]]; then
			say "chmod o+x $d (the postgres user must reach .testenv)"
			chmod o+x "$d"
		fi
		d=$(dirname "$d")
	done
}

# pg_socket_dir: unix sockets live in .testenv unless the path is too long for sun_path.
pg_socket_dir() {
	local d=$TE/pg/run
	if ((${#d} > 80)); then
		d=/tmp/linkdr-testenv-$(printf '%s' "$TE" | cksum | cut -d' ' -f1)
	fi
	printf '%s\n' "$d"
}

# --- pg --------------------------------------------------------------------------------------

pg_ready() { "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$1" -t 1; }

pg_healthy() {
	local s
	for s in primary standby; do
		alive_dir "$TE/pg/$s" && pg_ready "$(<"$TE/pg/$s/port")" || return 1
	done
}

pg_streaming() {
	[[ $("$PG_BINDIR/psql" -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres \
		-c "select count(*) from pg_stat_replication where state = 'streaming'") -ge 1 ]]
}

pg_up() {
	local p=$TE/pg/primary s=$TE/pg/standby sock pport sport
	sock=$(pg_socket_dir)
	mkdir -p "$p" "$s" "$sock"
	chmod 0755 "$TE/pg" "$p" "$s"
	chown postgres:postgres "$sock"
	pick_port "$p"
	pick_port "$s"
	pport=$(<"$p/port")
	sport=$(<"$s/port")
	ensure_postgres_can_reach "$p"
	install -d -o postgres -g postgres -m 0700 "$p/data" "$s/data"

	as_postgres "$PG_BINDIR/initdb" -D "$p/data" -U postgres --auth=trust --no-sync -E UTF8 \
		--no-locale >"$p/log" 2>&1 || fail "pg primary" "$p/log" "initdb failed"
	cat >>"$p/data/postgresql.conf" <<EOF

# scripts/testenv.sh
listen_addresses = '127.0.0.1'
port = $pport
unix_socket_directories = '$sock'
max_connections = 200
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
fsync = off
full_page_writes = on
log_min_messages = warning
EOF
	start_server "$p" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BINDIR/postgres" -D "$p/data"
	wait_ready "pg primary" "$p" pg_ready "$pport"

	as_postgres "$PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres -D "$s/data" \
		-R -X stream -c fast >"$s/log" 2>&1 || fail "pg standby" "$s/log" "pg_basebackup failed"
	printf '\n# scripts/testenv.sh: standby\nport = %s\n' "$sport" >>"$s/data/postgresql.conf"
	start_server "$s" setpriv --reuid=postgres --regid=postgres --init-groups \
		"$PG_BINDIR/postgres" -D "$s/data"
	wait_ready "pg standby" "$s" pg_ready "$sport"
	wait_ready "pg standby" "$s" pg_streaming "$pport"
}

pg_env() {
	cat <<EOF
LINKDR_TEST_PG_URL=postgres://postgres@127.0.0.1:$(<"$TE/pg/primary/port")/postgres?sslmode=disable
LINKDR_TEST_PG_STANDBY_URL=postgres://postgres@127.0.0.1:$(<"$TE/pg/standby/port")/postgres?sslmode=disable
LINKDR_TEST_PG_BINDIR=$PG_BINDIR
LINKDR_TEST_PG_SOCKET_DIR=$(pg_socket_dir)
EOF
}

pg_summary() { echo "127.0.0.1:$(<"$TE/pg/primary/port"), standby $(<"$TE/pg/standby/port")"; }

# --- redis -----------------------------------------------------------------------------------

redis_cli() { redis-cli -h 127.0.0.1 -p "$@"; }
redis_ping() { [[ $(redis_cli "$1" ping 2>/dev/null) == PONG ]]; }
redis_cluster_ok() { redis_cli "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

redis_cluster_dirs() { printf "$TE/redis/cluster/%s\n" 1 2 3 4 5 6; }

redis_healthy() {
	local d
	for d in "$TE/redis/standalone" $(redis_cluster_dirs); do
		alive_dir "$d" && redis_ping "$(<"$d/port")" || return 1
	done
	for d in $(redis_cluster_dirs); do
		redis_cluster_ok "$(<"$d/port")" || return 1
	done
}

redis_start() {
	local d=$1
	shift
	start_server "$d" redis-server --port "$(<"$d/port")" --bind 127.0.0.1 --dir "$d" \
		--daemonize no --save "" --appendonly no --repl-diskless-sync-delay 0 "$@"
}

redis_up() {
	local d=$TE/redis/standalone addrs=()
	mkdir -p "$d"
	pick_port "$d"
	redis_start "$d"
	for d in $(redis_cluster_dirs); do
		mkdir -p "$d"
		pick_port "$d" bus
		redis_start "$d" --cluster-enabled yes --cluster-config-file nodes.conf \
			--cluster-node-timeout 2000
		addrs+=("127.0.0.1:$(<"$d/port")")
	done
	for d in "$TE/redis/standalone" $(redis_cluster_dirs); do
		wait_ready "redis" "$d" redis_ping "$(<"$d/port")"
	done
	d=$TE/redis/cluster
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
		>"$d/create.log" 2>&1 || fail "redis cluster" "$d/create.log" "cluster create failed"
	for d in $(redis_cluster_dirs); do
		wait_ready "redis cluster" "$d" redis_cluster_ok "$(<"$d/port")"
	done
}

redis_env() {
	local d addrs=()
	for d in $(redis_cluster_dirs); do addrs+=("127.0.0.1:$(<"$d/port")"); done
	echo "LINKDR_TEST_REDIS_ADDR=127.0.0.1:$(<"$TE/redis/standalone/port")"
	(
		IFS=,
		echo "LINKDR_TEST_REDIS_CLUSTER_ADDRS=${addrs[*]}"
	)
}

redis_summary() {
	local d ports=()
	for d in $(redis_cluster_dirs); do ports+=("$(<"$d/port")"); done
	echo "127.0.0.1:$(<"$TE/redis/standalone/port"), cluster ${ports[*]}"
}

# --- s3 --------------------------------------------------------------------------------------

http_answers() { [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1") != 000 ]]; }

s3_healthy() {
	local d
	for d in "$TE/s3/primary" "$TE/s3/dr"; do
		alive_dir "$d" && http_answers "http://127.0.0.1:$(<"$d/port")/" || return 1
	done
}

s3_up() {
	local d
	for d in "$TE/s3/primary" "$TE/s3/dr"; do
		mkdir -p "$d/root" "$d/versions"
		pick_port "$d"
		start_server "$d" "$BIN/versitygw" --port "127.0.0.1:$(<"$d/port")" \
			--access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --region "$S3_REGION" \
			posix --versioning-dir "$d/versions" "$d/root"
	done
	for d in "$TE/s3/primary" "$TE/s3/dr"; do
		wait_ready "s3 $(basename "$d")" "$d" http_answers "http://127.0.0.1:$(<"$d/port")/"
	done
}

s3_env() {
	cat <<EOF
LINKDR_TEST_S3_ENDPOINT=http://127.0.0.1:$(<"$TE/s3/primary/port")
LINKDR_TEST_S3_DR_ENDPOINT=http://127.0.0.1:$(<"$TE/s3/dr/port")
LINKDR_TEST_S3_REGION=$S3_REGION
LINKDR_TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY
LINKDR_TEST_S3_SECRET_KEY=$S3_SECRET_KEY
LINKDR_TEST_VERSITYGW_BIN=$BIN/versitygw
EOF
}

s3_summary() { echo "127.0.0.1:$(<"$TE/s3/primary/port"), dr $(<"$TE/s3/dr/port")"; }

# --- k8s -------------------------------------------------------------------------------------

etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$1/health" | grep -q '"health":"true"'; }
kube_ready() {
	[[ $(curl -s --max-time 2 --cacert "$TE/k8s/ca.crt" -H "Authorization: Bearer $2" \
		"https://127.0.0.1:$1/readyz") == ok ]]
}

k8s_healthy() {
	alive_dir "$TE/k8s/etcd" && alive_dir "$TE/k8s/apiserver" &&
		etcd_healthy "$(<"$TE/k8s/etcd/port")" &&
		kube_ready "$(<"$TE/k8s/apiserver/port")" "$(<"$TE/k8s/token")"
}

k8s_up() {
	local k=$TE/k8s e=$TE/k8s/etcd a=$TE/k8s/apiserver eport apport token
	mkdir -p "$e/peer" "$a/certs"
	pick_port "$e"
	pick_port "$e/peer"
	pick_port "$a"
	eport=$(<"$e/port")
	apport=$(<"$a/port")
	token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	echo "$token" >"$k/token"
	echo "$token,admin,admin-uid,system:masters" >"$k/tokens.csv"
	openssl genrsa -out "$k/sa.key" 2048 >"$a/log" 2>&1 || fail "k8s" "$a/log" "openssl genrsa failed"
	openssl rsa -in "$k/sa.key" -pubout -out "$k/sa.pub" >"$a/log" 2>&1 ||
		fail "k8s" "$a/log" "openssl rsa failed"

	start_server "$e" "$BIN/etcd" --name testenv --data-dir "$e/data" \
		--listen-client-urls "http://127.0.0.1:$eport" --advertise-client-urls "http://127.0.0.1:$eport" \
		--listen-peer-urls "http://127.0.0.1:$(<"$e/peer/port")" \
		--initial-advertise-peer-urls "http://127.0.0.1:$(<"$e/peer/port")" \
		--initial-cluster "testenv=http://127.0.0.1:$(<"$e/peer/port")" \
		--unsafe-no-fsync --log-level warn
	wait_ready "k8s etcd" "$e" etcd_healthy "$eport"

	start_server "$a" "$BIN/kube-apiserver" --bind-address=127.0.0.1 --secure-port="$apport" \
		--cert-dir="$a/certs" --etcd-servers="http://127.0.0.1:$eport" \
		--service-cluster-ip-range=10.0.0.0/24 --service-account-issuer="https://127.0.0.1:$apport" \
		--service-account-key-file="$k/sa.pub" --service-account-signing-key-file="$k/sa.key" \
		--token-auth-file="$k/tokens.csv" --authorization-mode=RBAC
	# The self-signed serving certificate is written at start-up; its CA follows it in the file.
	wait_ready "k8s apiserver" "$a" test -s "$a/certs/apiserver.crt"
	cp "$a/certs/apiserver.crt" "$k/ca.crt"
	wait_ready "k8s apiserver" "$a" kube_ready "$apport" "$token"
	cat >"$k/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: linkdr-test
  cluster:
    server: https://127.0.0.1:$apport
    certificate-authority: $k/ca.crt
users:
- name: admin
  user:
    token: $token
contexts:
- name: linkdr-test
  context:
    cluster: linkdr-test
    user: admin
    namespace: default
current-context: linkdr-test
EOF
}

k8s_env() {
	cat <<EOF
LINKDR_TEST_KUBECONFIG=$TE/k8s/kubeconfig
LINKDR_TEST_KUBE_SERVER=https://127.0.0.1:$(<"$TE/k8s/apiserver/port")
LINKDR_TEST_KUBE_TOKEN=$(<"$TE/k8s/token")
LINKDR_TEST_KUBE_CA_FILE=$TE/k8s/ca.crt
LINKDR_TEST_ETCD_ENDPOINT=http://127.0.0.1:$(<"$TE/k8s/etcd/port")
LINKDR_TEST_ETCD_BIN=$BIN/etcd
LINKDR_TEST_KUBE_APISERVER_BIN=$BIN/kube-apiserver
EOF
}

k8s_summary() { echo "https://127.0.0.1:$(<"$TE/k8s/apiserver/port"), etcd $(<"$TE/k8s/etcd/port")"; }

# --- dns -------------------------------------------------------------------------------------

# dns_ready PORT: the zone's SOA comes back (dig +short prints errors on stdout too).
dns_ready() {
	local soa
	soa=$(dig @127.0.0.1 -p "$1" "$DNS_ZONE" SOA +short +time=1 +tries=1 2>/dev/null) &&
		[[ $soa == "ns1.$DNS_ZONE hostmaster.$DNS_ZONE "* ]]
}

dns_healthy() { alive_dir "$TE/dns" && dns_ready "$(<"$TE/dns/port")"; }

dns_up() {
	local d=$TE/dns port zone=${DNS_ZONE%.}
	mkdir -p "$d/work"
	pick_port "$d"
	port=$(<"$d/port")
	tsig-keygen -a hmac-sha256 "${DNS_TSIG_NAME%.}" >"$d/tsig.key"
	cat >"$d/work/db.$zone" <<EOF
\$TTL 60
@	IN SOA	ns1.$DNS_ZONE hostmaster.$DNS_ZONE 1 60 60 600 60
@	IN NS	ns1.$DNS_ZONE
ns1	IN A	127.0.0.1
api	IN A	10.0.1.10
db	IN A	10.0.1.20
www	IN CNAME	api.$DNS_ZONE
EOF
	cat >"$d/named.conf" <<EOF
include "$d/tsig.key";
options {
	directory "$d/work";
	listen-on port $port { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file none;
	session-keyfile none;
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	notify no;
};
controls { };
zone "$zone" {
	type primary;
	file "$d/work/db.$zone";
	allow-update { key "${DNS_TSIG_NAME%.}"; };
};
EOF
	start_server "$d" named -g -c "$d/named.conf" -n 1
	wait_ready "dns" "$d" dns_ready "$port"
}

dns_env() {
	cat <<EOF
LINKDR_TEST_DNS_ADDR=127.0.0.1:$(<"$TE/dns/port")
LINKDR_TEST_DNS_ZONE=$DNS_ZONE
LINKDR_TEST_DNS_TSIG_NAME=$DNS_TSIG_NAME
LINKDR_TEST_DNS_TSIG_ALGORITHM=hmac-sha256
LINKDR_TEST_DNS_TSIG_SECRET=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$TE/dns/tsig.key")
LINKDR_TEST_NAMED_BIN=$(command -v named)
EOF
}

dns_summary() { echo "127.0.0.1:$(<"$TE/dns/port") zone $DNS_ZONE"; }

# --- prom and tools (binaries only) ----------------------------------------------------------

prom_healthy() { [[ -x /usr/bin/prometheus && -x /usr/bin/promtool ]]; }
prom_up() { prom_healthy || fail "prom" /dev/null "prometheus/promtool missing after install"; }
prom_env() {
	echo "LINKDR_TEST_PROMETHEUS_BIN=/usr/bin/prometheus"
	echo "LINKDR_TEST_PROMTOOL_BIN=/usr/bin/promtool"
}
prom_summary() { /usr/bin/prometheus --version 2>&1 | awk 'NR == 1 { sub(",", "", $1); print $1, $3 }'; }

readonly TOOLS=(age age-keygen zstd pgbackrest redis-cli redis-server dig chromium curl)
tools_healthy() {
	local t
	for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null || return 1; done
	[[ -x $PG_BINDIR/pg_dump && -x $PG_BINDIR/pg_restore ]]
}
tools_up() { tools_healthy || fail "tools" /dev/null "tools missing after install"; }
tools_env() {
	local t var
	for t in "${TOOLS[@]}"; do
		var=${t^^}
		var=${var//-/_}
		echo "LINKDR_TEST_${var}_BIN=$(command -v "$t")"
	done
	echo "LINKDR_TEST_PG_DUMP_BIN=$PG_BINDIR/pg_dump"
	echo "LINKDR_TEST_PG_RESTORE_BIN=$PG_BINDIR/pg_restore"
	echo "LINKDR_TEST_PSQL_BIN=$PG_BINDIR/psql"
	# moto (AWS API emulator, for Route 53) comes with the machine's Python, not from apt.
	if command -v moto_server >/dev/null; then echo "LINKDR_TEST_MOTO_SERVER_BIN=$(command -v moto_server)"; fi
}
tools_summary() { echo "${TOOLS[*]} pg_dump pg_restore"; }

# --- commands --------------------------------------------------------------------------------

# write_env: .testenv/env from the fragments of the components that are up.
write_env() {
	local c tmp=$TE/env.tmp
	{
		echo "LINKDR_TESTENV_DIR=$TE"
		for c in "${ALL_COMPONENTS[@]}"; do
			if [[ -f $TE/$c/env ]]; then cat "$TE/$c/env"; fi
		done
	} >"$tmp"
	mv "$tmp" "$TE/env"
}

check_components() {
	local c
	for c in "$@"; do
		[[ " ${ALL_COMPONENTS[*]} " == *" $c "* ]] || {
			warn "unknown component $c (want: ${ALL_COMPONENTS[*]})"
			exit 2
		}
	done
}

lock() {
	mkdir -p "$TE"
	exec 9>"$TE/.lock"
	flock 9
}

cmd_up() {
	local c comps=("$@")
	((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")
	check_components "${comps[@]}"
	lock
	chmod 0755 "$TE"
	install_packages "${comps[@]}"
	for c in "${comps[@]}"; do
		case $c in
		s3) build_versitygw ;;
		k8s) build_kube ;;
		esac
	done
	for c in "${comps[@]}"; do
		if ! "${c}_healthy"; then
			stop_component "$c" keep-ports
			mkdir -p "$TE/$c"
			load_taken_ports
			"${c}_up"
		fi
		mkdir -p "$TE/$c"
		"${c}_env" >"$TE/$c/env"
		say "$c up ($("${c}_summary"))"
	done
	write_env
}

cmd_down() {
	local c comps=("$@") i
	((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")
	check_components "${comps[@]}"
	lock
	for ((i = ${#comps[@]} - 1; i >= 0; i--)); do
		stop_component "${comps[i]}"
	done
	if (($# == 0)); then
		rm -rf "$TE/env" "$TE/tmp"
	else
		write_env
	fi
	say "down (${comps[*]})"
}

cmd_status() {
	local c rc=0
	for c in "${ALL_COMPONENTS[@]}"; do
		if [[ -f $TE/$c/env ]] && "${c}_healthy" 2>/dev/null; then
			say "$c up ($("${c}_summary"))"
		else
			say "$c down"
			rc=1
		fi
	done
	((rc == 0)) || exit 1
}

cmd_env() {
	[[ -f $TE/env ]] || {
		warn "no $TE/env: run \"scripts/testenv.sh up\""
		exit 1
	}
	cat "$TE/env"
}

main() {
	local cmd=${1:-}
	(($#)) && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	*)
		echo "usage: $0 up [COMPONENT...] | down [COMPONENT...] | status | env" >&2
		echo "components: ${ALL_COMPONENTS[*]}" >&2
		exit 2
		;;
	esac
}

main "$@"
