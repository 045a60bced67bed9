#!/usr/bin/env bash
# Project-local PostgreSQL cluster on loopback (initdb/pg_ctl from Debian's postgresql package,
# installed when missing). Usage: postgres.sh start|stop|status|psql. Idempotent: start reuses a
# running cluster; the database and role are created when absent. Migrations are applied by
# `baton migrate` (Alembic), not here.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
sock_dir="$PG_DATA_DIR.sock"

resolve_data_dir() {
  # As root the server runs as the postgres user, which cannot enter a checkout under a private
  # home (e.g. /root, mode 700). Then keep the cluster in postgres' own home, at a path derived
  # from the requested one, so start/stop/status of the same checkout always find it.
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    local parent; parent=$(dirname "$PG_DATA_DIR")
    mkdir -p "$parent"
    if ! runuser -u postgres -- test -x "$parent" 2>/dev/null; then
      PG_DATA_DIR="$(getent passwd postgres | cut -d: -f6)/baton-$(printf '%s' "$PG_DATA_DIR" | sha1sum | cut -c1-12)"
    fi
  fi
  sock_dir="$PG_DATA_DIR.sock"
}

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

ensure_installed() {
  if find_bindir >/dev/null; then return 0; fi
  echo "postgres.sh: installing Debian's postgresql package"
  if [ "$(id -u)" -ne 0 ]; then echo "postgres.sh: need root to apt-get install postgresql" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  # Debian starts its own cluster on 5432; we run our own on $PGPORT, so stop theirs.
  (command -v pg_ctlcluster >/dev/null && pg_ctlcluster --help >/dev/null 2>&1 && service postgresql stop) >/dev/null 2>&1 || true
}

as_owner() {  # initdb refuses to run as root: run the server tools as the postgres user then
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

bindir() { find_bindir; }

start() {
  ensure_installed
  resolve_data_dir
  local bin; bin=$(bindir)
  if as_owner "$bin/pg_isready" -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then
    echo "postgres.sh: reusing PostgreSQL on $PGHOST:$PGPORT"
  else
    mkdir -p "$PG_DATA_DIR" "$sock_dir"
    [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$PG_DATA_DIR" "$sock_dir"
    if [ ! -f "$PG_DATA_DIR/PG_VERSION" ]; then
      as_owner "$bin/initdb" -D "$PG_DATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >> "$PG_DATA_DIR/postgresql.conf" <<CONF
listen_addresses = '$PGHOST'
port = $PGPORT
unix_socket_directories = '$sock_dir'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
    fi
    as_owner "$bin/pg_ctl" -D "$PG_DATA_DIR" -l "$PG_DATA_DIR/server.log" -w -t 60 start >/dev/null
    echo "postgres.sh: PostgreSQL up on $PGHOST:$PGPORT"
  fi
  psql_admin -tAc "select 1 from pg_roles where rolname = '$PGUSER'" | grep -q 1 \
    || psql_admin -qc "create role \"$PGUSER\" login superuser"
  psql_admin -tAc "select 1 from pg_database where datname = '$PGDATABASE'" | grep -q 1 \
    || psql_admin -qc "create database \"$PGDATABASE\" owner \"$PGUSER\""
}

psql_admin() { "$(bindir)/psql" -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }

stop() {
  local bin; bin=$(bindir) || { echo "postgres.sh: not installed"; return 0; }
  resolve_data_dir
  if [ -f "$PG_DATA_DIR/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$PG_DATA_DIR" -m fast -w stop >/dev/null && echo "postgres.sh: stopped"
  else
    echo "postgres.sh: not running"
  fi
}

status() {
  local bin; bin=$(bindir) || { echo "postgres: not installed"; return 1; }
  if "$bin/pg_isready" -q -h "$PGHOST" -p "$PGPORT"; then echo "postgres: up on $PGHOST:$PGPORT"; else echo "postgres: down"; return 1; fi
}

case "${1:-}" in
  start) start ;; stop) stop ;; status) status ;;
  psql) shift; exec "$(bindir)/psql" -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PGDATABASE" "$@" ;;
  *) echo "usage: $0 start|stop|status|psql" >&2; exit 2 ;;
esac
