#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test run (and benchmarks):
#
#   bash scripts/pg.sh start DIR   # initdb + pg_ctl start in DIR, prints the URL
#   bash scripts/pg.sh stop DIR    # stops it and removes DIR
#
# It listens only on 127.0.0.1, on a free port, with trust authentication
# for one database `ferry`. PostgreSQL refuses to run as root, so as root
# the cluster belongs to the `postgres` user that Debian's package creates.
set -euo pipefail
say() { printf 'pg: %s\n' "$*" >&2; }
die() { printf 'pg: FAILED: %s\n' "$*" >&2; exit 1; }

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bin" ] && [ -x "$bin/initdb" ] \
  || die "PostgreSQL is not installed (Debian package postgresql; as root, bash scripts/deps.sh installs it)"

cmd=${1:-}; dir=${2:-}
[ -n "$dir" ] || die "usage: pg.sh start|stop DIR"

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user to own the cluster"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir"
      # The postgres user must reach DIR: a mktemp -d parent is root's alone.
      chmod o+x "$(dirname "$dir")"
    fi
    port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    as_owner "$bin/initdb" -D "$dir/data" -U ferry --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # Sockets go in the cluster's own folder: the default one may not exist or be writable.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$dir/server.log" >&2; die "pg_ctl start failed"; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U ferry ferry || die "createdb failed"
    echo "postgres://ferry@127.0.0.1:$port/ferry"
    ;;
  stop)
    if [ -d "$dir/data" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    ;;
  *) die "usage: pg.sh start|stop DIR" ;;
esac
