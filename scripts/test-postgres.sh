#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, on 127.0.0.1.
#   scripts/test-postgres.sh start   -> prints the URL tests should use
#   scripts/test-postgres.sh stop
# PostgreSQL refuses to run as root, so as root the cluster belongs to `postgres`.
set -euo pipefail

port=${OPTOUT_TEST_POSTGRES_PORT:-54329}
dir=${OPTOUT_TEST_POSTGRES_DIR:-/tmp/optout-test-postgres-$port}

bindir=""
for candidate in "$(command -v pg_config >/dev/null 2>&1 && pg_config --bindir || true)" \
                 /usr/lib/postgresql/*/bin; do
  if [[ -n $candidate && -x $candidate/initdb && -x $candidate/pg_ctl ]]; then
    bindir=$candidate
  fi
done
if [[ -z $bindir ]]; then
  echo "PostgreSQL server binaries (initdb, pg_ctl) not found" >&2
  exit 3
fi

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case ${1:-start} in
  start)
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    if as_owner "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    as_owner "$bindir/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 \
      --locale=C.UTF-8 >"$dir.initdb.log" 2>&1 || { cat "$dir.initdb.log" >&2; exit 1; }
    as_owner "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off \
          -c full_page_writes=off -c max_connections=200" start >/dev/null
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
