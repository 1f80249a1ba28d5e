#!/usr/bin/env bash
# Installs (if missing) and starts a private PostgreSQL 15 server for the tests, idempotently.
#
#   bash eng/postgres.sh start   # install if needed, initdb if needed, start; prints the connection string
#   bash eng/postgres.sh stop
#   bash eng/postgres.sh status  # exit 0 when it accepts connections
#
# The server listens on 127.0.0.1:${CSS_PG_PORT:-55432} with trust authentication (tests only), wal_level=logical
# (the CDC tests use logical replication with pgoutput), fsync=off and synchronous_commit=on (logical decoding reads
# only flushed WAL). Data lives in ${CSS_PG_DATA:-/tmp/crossstoresync-pg}. No systemd, no Docker: `runuser -u postgres`.
set -euo pipefail

port="${CSS_PG_PORT:-55432}"
data="${CSS_PG_DATA:-/tmp/crossstoresync-pg}"
log="${data}.log"
command="${1:-start}"

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

run_as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

ready() {
  "$bin/pg_isready" -h 127.0.0.1 -p "$port" -q
}

install() {
  if find_bin >/dev/null; then
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is not installed and apt-get is not available: install PostgreSQL 15 (server binaries)." >&2
    exit 1
  fi
  echo "Installing PostgreSQL from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update && apt-get install -y postgresql) >&2
}

start() {
  install
  bin="$(find_bin)"
  if ready; then
    echo "Host=127.0.0.1;Port=${port};Username=postgres;Database=postgres"
    return 0
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    rm -rf "$data"
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$data"
    fi
    chmod 0700 "$data"
    run_as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = ${port}
unix_socket_directories = ''
wal_level = logical
max_replication_slots = 40
max_wal_senders = 40
max_connections = 300
fsync = off
synchronous_commit = on
full_page_writes = off
shared_buffers = 256MB
wal_sender_timeout = 60s
CONF
    echo "host all all 127.0.0.1/32 trust" >"$data/pg_hba.conf"
    echo "host replication all 127.0.0.1/32 trust" >>"$data/pg_hba.conf"
  fi
  touch "$log"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$log"
  fi
  # After a kill -9 the stale pid file can make the first start fail for about a second: retry.
  local attempt
  for attempt in 1 2 3 4 5; do
    if run_as_postgres "$bin/pg_ctl" -D "$data" -l "$log" -w -t 30 start >/dev/null 2>&1; then
      break
    fi
    ready && break
    sleep 1
  done
  if ! ready; then
    echo "PostgreSQL did not start; see $log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
  fi
  echo "Host=127.0.0.1;Port=${port};Username=postgres;Database=postgres"
}

stop() {
  bin="$(find_bin)" || exit 0
  if [ -f "$data/PG_VERSION" ]; then
    run_as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

case "$command" in
  start) start ;;
  stop) stop ;;
  status) bin="$(find_bin)" && ready ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
