#!/usr/bin/env bash
# The compose test bed without Docker: the gate scenarios in scenarios/
# against a real opal-server, every server a local process on loopback.
#
#   Redis        opal-server's scope store
#   Postgres     the broadcaster's database, reached only through faultgate
#   lighttpd     git http-backend standing in for Gitea (repositories at
#                /$GITEA_OWNER/<name>.git, as Gitea lays them out), reached
#                only through faultgate
#   faultgate    proxy `gitea` (http mode) and `postgres` (postgres mode), as
#                in faultgate.toml, and `gitea_legacy` (http mode, to the same
#                git server) for the legacy server alone
#   opal-server  one worker, scopes on, as in docker-compose.yml
#   opal-server  a second one in the legacy single-repository mode
#                (OPAL_POLICY_REPO_URL: policy-repo-legacy through
#                `gitea_legacy`, polled every second), for the gate of that mode
#
# Usage: compose/without-docker.sh [SCENARIO.toml...]  (default: scenarios/*.toml)
# Needs: redis-server, Postgres (initdb, postgres), lighttpd, git, psql, and
#        opal-server in a Python venv:
#          python3 -m venv target/opal-venv
#          target/opal-venv/bin/pip install --no-deps -r compose/opal-server.requirements.txt
#        (./scripts/test installs all of these).
# Env:   FAULTGATE  the faultgate binary (default: faultgate on PATH)
#        OPAL_VENV  the venv holding opal-server (default: target/opal-venv)
#        JUNIT      write a JUnit report there
#        KEEP=1     keep the temp dir with every server's log
#        CONTROLS   control scenarios (paths, space-separated), run after the
#                   gates against the same bed by one more `faultgate run`,
#                   whose exit code is logged ("controls exited N"); the
#                   script's exit code stays the gates'
#        CONTROLS_JUNIT  the controls' JUnit report
# The scenarios get, besides the addresses: OPAL_PID (opal-server's pid, for
# its /proc), GIT_ACCESS_LOG (the git server's access log), LEGACY_OPAL (the
# legacy-mode server) and GIT_HOST_VIA_FAULTGATE (host:port of `gitea`).
# Exit:  faultgate run's exit code (0 all passed, 1 a check failed, 2 a bad
#        file or an unreachable stack), or 3 when the bed could not start.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
FAULTGATE=${FAULTGATE:-faultgate}
OPAL_VENV=${OPAL_VENV:-$HERE/../target/opal-venv}
OWNER=${GITEA_OWNER:-gitea_admin}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ $# -gt 0 ]; then SCENARIOS=("$@"); else SCENARIOS=("$HERE"/scenarios/*.toml); fi

export no_proxy='*' NO_PROXY='*'
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

command -v "$FAULTGATE" >/dev/null || { echo "without-docker.sh: no faultgate binary ($FAULTGATE); set FAULTGATE" >&2; exit 3; }
[ -x "$OPAL_VENV/bin/opal-server" ] || { echo "without-docker.sh: no opal-server in $OPAL_VENV; see the top of this script" >&2; exit 3; }
[ -n "$PGBIN" ] || { echo "without-docker.sh: no Postgres under /usr/lib/postgresql" >&2; exit 3; }
# opal-server 0.9.9 imports aiofiles without declaring it.
"$OPAL_VENV/bin/python" -c 'import aiofiles' 2>/dev/null \
  || { echo "without-docker.sh: $OPAL_VENV lacks aiofiles (opal_server imports it): $OPAL_VENV/bin/pip install aiofiles" >&2; exit 3; }

T=$(mktemp -d)
chmod 755 "$T"   # the postgres user reaches its data directory through it
# initdb and postgres refuse to run as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PIDS=()
log() { printf '[test bed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

teardown() {
  local rc=$? i p
  set +e
  log "tearing down"
  # opal-server first (it holds connections to everything else), then the
  # rest in reverse start order; Postgres by pg_ctl (its postmaster runs as
  # postgres under runuser).
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null
  done
  if [ -f "$T/pg/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$T/pg/data" -m immediate -w -t 10 stop >/dev/null 2>&1
  fi
  for ((i = 0; i < 50; i++)); do
    local alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then log "logs kept in $T"; else rm -rf "$T"; fi
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

free_port() {
  "$OPAL_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for DESC SECONDS CMD...: run CMD every 0.2 s until it succeeds, at most SECONDS.
wait_for() {
  local desc=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  log "FAILED: $desc not ready within ${secs}s"; return 1
}
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
bed_fail() { log "$*"; KEEP=1; exit 3; }

REDIS_PORT=$(free_port); PG_PORT=$(free_port); GIT_PORT=$(free_port)
FG_API_PORT=$(free_port); FG_GIT_PORT=$(free_port); FG_PG_PORT=$(free_port)
FG_LEGACY_GIT_PORT=$(free_port); OPAL_PORT=$(free_port); LEGACY_OPAL_PORT=$(free_port)
log "temp dir $T; ports: redis $REDIS_PORT, postgres $PG_PORT, git $GIT_PORT," \
    "faultgate api $FG_API_PORT gitea $FG_GIT_PORT postgres $FG_PG_PORT gitea_legacy $FG_LEGACY_GIT_PORT," \
    "opal $OPAL_PORT, legacy opal $LEGACY_OPAL_PORT"

# --- Redis ------------------------------------------------------------------
mkdir -p "$T/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$T/redis" \
  --save '' --appendonly no --daemonize no >"$T/redis.log" 2>&1 &
PIDS+=($!)
wait_for redis 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping || bed_fail "redis did not start"

# --- Postgres (as compose's postgres:16: user postgres, password postgres, SCRAM on TCP)
mkdir -p "$T/pg/sock"
printf 'postgres\n' >"$T/pg/pw"
[ "$(id -u)" = 0 ] && chown -R postgres:postgres "$T/pg"
as_pg "$PGBIN/initdb" -D "$T/pg/data" -U postgres --pwfile="$T/pg/pw" \
  --auth-local=trust --auth-host=scram-sha-256 >"$T/initdb.log" 2>&1 \
  || bed_fail "initdb failed: $(tail -n5 "$T/initdb.log")"
as_pg "$PGBIN/postgres" -D "$T/pg/data" -c listen_addresses=127.0.0.1 \
  -p "$PG_PORT" -k "$T/pg/sock" >"$T/postgres.log" 2>&1 &
PIDS+=($!)
wait_for postgres 30 "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
  || bed_fail "postgres did not start: $(tail -n5 "$T/postgres.log")"

# --- git smart HTTP (Gitea's stand-in): /$OWNER/<repo>.git -------------------
mkdir -p "$T/git/www" "$T/git/repos/$OWNER" "$T/git/seed"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0
for repo in policy-repo-0001 policy-repo-0002 policy-repo-0003 policy-repo-offline policy-repo-legacy; do
  # As compose/gitea-seed.sh: branch main, one Rego file and a .manifest.
  work="$T/git/seed/$repo"
  git init -q -b main "$work"
  printf 'package %s\n\ndefault allow := false\n' "$(echo "$repo" | tr - _)" >"$work/policy.rego"
  printf '["policy.rego"]\n' >"$work/.manifest"
  git -C "$work" -c user.name=seed -c user.email=seed@example.invalid add -A
  git -C "$work" -c user.name=seed -c user.email=seed@example.invalid commit -q -m seed
  git clone -q --bare "$work" "$T/git/repos/$OWNER/$repo.git"
done
BACKEND="$(git --exec-path)/git-http-backend"
# As proxy/tests/support/git_http.rs, with the repositories at /$OWNER/ (Gitea's layout).
cat >"$T/git/lighttpd.conf" <<EOF
server.document-root = "$T/git/www"
server.bind = "127.0.0.1"
server.port = $GIT_PORT
server.errorlog = "$T/git/error.log"
server.upload-dirs = ( "$T/git" )
server.stream-request-body = 2
server.stream-response-body = 2
server.modules = ( "mod_alias", "mod_cgi", "mod_setenv", "mod_accesslog" )
# Every request, one line each as it is answered: the repeat-sync guard
# counts the fetches of a repository here.
accesslog.filename = "$T/git/access.log"
alias.url = ( "/$OWNER" => "$BACKEND" )
\$HTTP["url"] =~ "^/$OWNER/" {
    cgi.assign = ( "" => "" )
    setenv.add-environment = (
        "GIT_PROJECT_ROOT" => "$T/git/repos/$OWNER",
        "GIT_HTTP_EXPORT_ALL" => "1",
        "GIT_CONFIG_NOSYSTEM" => "1",
        "GIT_CONFIG_GLOBAL" => "/dev/null"
    )
}
EOF
lighttpd -D -f "$T/git/lighttpd.conf" >"$T/lighttpd.log" 2>&1 &
PIDS+=($!)
wait_for lighttpd 10 tcp_open "$GIT_PORT" || bed_fail "lighttpd did not listen: $(cat "$T/git/error.log")"
git ls-remote "http://127.0.0.1:$GIT_PORT/$OWNER/policy-repo-0001.git" main >/dev/null \
  || bed_fail "git http-backend does not serve policy-repo-0001"

# --- faultgate (compose/faultgate.toml with loopback addresses) --------------
cat >"$T/faultgate.toml" <<EOF
[[proxies]]
name = "gitea"
mode = "http"
listen = "127.0.0.1:$FG_GIT_PORT"
upstream = "127.0.0.1:$GIT_PORT"

[[proxies]]
name = "postgres"
mode = "postgres"
listen = "127.0.0.1:$FG_PG_PORT"
upstream = "127.0.0.1:$PG_PORT"

[[proxies]]
name = "gitea_legacy"
mode = "http"
listen = "127.0.0.1:$FG_LEGACY_GIT_PORT"
upstream = "127.0.0.1:$GIT_PORT"
EOF
"$FAULTGATE" serve --config "$T/faultgate.toml" --api "127.0.0.1:$FG_API_PORT" --seed 7 \
  --no-plugin-cache >"$T/faultgate.log" 2>&1 &
PIDS+=($!)
wait_for "faultgate api" 30 curl -fsS "http://127.0.0.1:$FG_API_PORT/proxies" \
  || bed_fail "faultgate did not start: $(tail -n5 "$T/faultgate.log")"
git ls-remote "http://127.0.0.1:$FG_GIT_PORT/$OWNER/policy-repo-0001.git" main >/dev/null \
  || bed_fail "git through faultgate does not work"
PGPASSWORD=postgres psql "postgres://postgres@127.0.0.1:$FG_PG_PORT/postgres?sslmode=disable" \
  -Atc 'select 1' >/dev/null || bed_fail "postgres through faultgate does not work"

# --- opal-server, and a second one in the legacy single-repository mode ---------
mkdir -p "$T/opal/base" "$T/opal-legacy/base"
OPAL_STARTED=${EPOCHREALTIME/./}
(
  cd "$T/opal"   # jwks_dir and regoclone defaults are relative to the cwd
  exec env \
    OPAL_SERVER_HOST=127.0.0.1 \
    OPAL_SERVER_BIND_PORT="$OPAL_PORT" \
    OPAL_SERVER_WORKER_COUNT=1 \
    OPAL_SCOPES=true \
    OPAL_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    OPAL_BROADCAST_URI="postgres://postgres:postgres@127.0.0.1:$FG_PG_PORT/postgres" \
    OPAL_POLICY_REFRESH_INTERVAL=0 \
    OPAL_BASE_DIR="$T/opal/base" \
    OPAL_LEADER_LOCK_FILE_PATH="$T/opal/leader.lock" \
    OPAL_POLICY_BUNDLE_TMP_PATH="$T/opal/bundle.tar.gz" \
    OPAL_DEBUG_INTERNAL_STATS=true \
    OPAL_LOG_COLORIZE=false \
    "$OPAL_VENV/bin/opal-server" run
) >"$T/opal-server.log" 2>&1 &
PIDS+=($!)
OPAL_PID=$!
# Started beside the first (their start-ups overlap): no scopes, no
# broadcaster, one repository polled every second through `gitea_legacy`.
(
  cd "$T/opal-legacy"
  exec env \
    OPAL_SERVER_HOST=127.0.0.1 \
    OPAL_SERVER_BIND_PORT="$LEGACY_OPAL_PORT" \
    OPAL_SERVER_WORKER_COUNT=1 \
    OPAL_SCOPES=false \
    OPAL_POLICY_REPO_URL="http://127.0.0.1:$FG_LEGACY_GIT_PORT/$OWNER/policy-repo-legacy.git" \
    OPAL_POLICY_REPO_MAIN_BRANCH=main \
    OPAL_POLICY_REPO_POLLING_INTERVAL=1 \
    OPAL_POLICY_REPO_CLONE_PATH="$T/opal-legacy/clones" \
    OPAL_BASE_DIR="$T/opal-legacy/base" \
    OPAL_LEADER_LOCK_FILE_PATH="$T/opal-legacy/leader.lock" \
    OPAL_POLICY_BUNDLE_TMP_PATH="$T/opal-legacy/bundle.tar.gz" \
    OPAL_LOG_COLORIZE=false \
    "$OPAL_VENV/bin/opal-server" run
) >"$T/opal-server-legacy.log" 2>&1 &
PIDS+=($!)
LEGACY_OPAL_PID=$!
# wait_opal NAME PORT PID LOG: until its /healthcheck answers, at most 120 s.
wait_opal() {
  local name=$1 port=$2 pid=$3 log=$4 i
  for ((i = 0; i < 600; i++)); do
    curl -fsS -m 2 "http://127.0.0.1:$port/healthcheck" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || bed_fail "$name exited: $(tail -n20 "$log")"
    sleep 0.2
  done
  curl -fsS -m 2 "http://127.0.0.1:$port/healthcheck" >/dev/null 2>&1 \
    || bed_fail "$name not healthy within 120s: $(tail -n20 "$log")"
  log "$name healthy after $(( (${EPOCHREALTIME/./} - OPAL_STARTED) / 1000 )) ms"
}
wait_opal opal-server "$OPAL_PORT" "$OPAL_PID" "$T/opal-server.log"
wait_opal "opal-server (legacy mode)" "$LEGACY_OPAL_PORT" "$LEGACY_OPAL_PID" "$T/opal-server-legacy.log"

# --- the scenarios -------------------------------------------------------------
export FAULTGATE_API="http://127.0.0.1:$FG_API_PORT"
export OPAL="http://127.0.0.1:$OPAL_PORT"
export GIT_VIA_FAULTGATE="http://127.0.0.1:$FG_GIT_PORT"
export GITEA_OWNER="$OWNER"
export BROADCAST_VIA_FAULTGATE="postgres://postgres:postgres@127.0.0.1:$FG_PG_PORT/postgres"
export GIT_HOST_VIA_FAULTGATE="127.0.0.1:$FG_GIT_PORT"
export LEGACY_OPAL="http://127.0.0.1:$LEGACY_OPAL_PORT"
export OPAL_PID GIT_ACCESS_LOG="$T/git/access.log"
log "faultgate run ${SCENARIOS[*]}"
REPORT=()
[ -n "${JUNIT:-}" ] && REPORT=(--junit "$JUNIT")
set +e
"$FAULTGATE" run "${SCENARIOS[@]}" "${REPORT[@]}"
RC=$?
if [ -n "${CONTROLS:-}" ]; then
  CONTROL_REPORT=()
  [ -n "${CONTROLS_JUNIT:-}" ] && CONTROL_REPORT=(--junit "$CONTROLS_JUNIT")
  # shellcheck disable=SC2086  # a list of paths, split on spaces
  log "controls: faultgate run $CONTROLS"
  # shellcheck disable=SC2086
  "$FAULTGATE" run $CONTROLS "${CONTROL_REPORT[@]}"
  log "controls exited $?"
fi
set -e
if [ $RC != 0 ]; then
  KEEP=1
  log "faultgate run exited $RC; the end of opal-server's log:"
  tail -n 30 "$T/opal-server.log" >&2
fi
exit $RC
