#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite and the benchmarks.
#
#   source .ci/pg.sh && pg_start     # installs PostgreSQL if missing, starts a cluster, exports the variables below
#   pg_stop                          # stops it and removes its directory
#   .ci/pg.sh start | stop           # the same as a command (start prints the exports to eval)
#
# Exports: TENGE_TEST_PG_URL (a database 'tenge' owned by the user 'tenge'), TENGE_TEST_PG_DATA (the cluster's
# directory), TENGE_TEST_PG_BIN (where pg_ctl and pgbench are), TENGE_TEST_PG_USER (the OS user the server runs as:
# PostgreSQL refuses to run as root). The bank test uses these to stop and restart the server mid-run.
# Settings: TENGE_PG_PORT (default 55432), TENGE_PG_DIR (default a new temporary directory).

pg_find_bin() {
    local d
    for d in /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /usr/local/bin /usr/bin; do
        if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

pg_install() {
    if pg_find_bin >/dev/null && command -v pgbench >/dev/null 2>&1; then
        return 0
    fi
    echo "pg.sh: installing PostgreSQL with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
}

# Run a command as the cluster's OS user (root cannot run the server).
pg_as() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$TENGE_TEST_PG_USER" -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    pg_install || { echo "pg.sh: could not install PostgreSQL" >&2; return 1; }
    TENGE_TEST_PG_BIN="$(pg_find_bin)"
    local port="${TENGE_PG_PORT:-55432}"
    if [ -z "${TENGE_PG_PORT:-}" ]; then  # the first free port from 55432 on
        while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    fi
    local dir="${TENGE_PG_DIR:-$(mktemp -d /tmp/tenge-pg.XXXXXX)}"
    if [ "$(id -u)" = 0 ]; then
        TENGE_TEST_PG_USER="postgres"
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$dir"
    else
        TENGE_TEST_PG_USER="$(id -un)"
    fi
    chmod 700 "$dir"
    TENGE_TEST_PG_DATA="$dir/data"
    export TENGE_TEST_PG_BIN TENGE_TEST_PG_DATA TENGE_TEST_PG_USER
    pg_as "$TENGE_TEST_PG_BIN/initdb" -D "$TENGE_TEST_PG_DATA" -U postgres -A trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    cat >>"$TENGE_TEST_PG_DATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 128MB
EOF
    pg_as "$TENGE_TEST_PG_BIN/pg_ctl" -D "$TENGE_TEST_PG_DATA" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    "$TENGE_TEST_PG_BIN/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE tenge LOGIN SUPERUSER" -c "CREATE DATABASE tenge OWNER tenge" >/dev/null || return 1
    export TENGE_TEST_PG_URL="postgresql://tenge@127.0.0.1:$port/tenge"
    echo "pg.sh: PostgreSQL running at $TENGE_TEST_PG_URL (data in $TENGE_TEST_PG_DATA)" >&2
}

pg_stop() {
    if [ -n "${TENGE_TEST_PG_DATA:-}" ] && [ -d "$TENGE_TEST_PG_DATA" ]; then
        pg_as "$TENGE_TEST_PG_BIN/pg_ctl" -D "$TENGE_TEST_PG_DATA" -m immediate -w stop >/dev/null 2>&1 || true
        rm -rf "$(dirname "$TENGE_TEST_PG_DATA")"
    fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case "${1:-}" in
        start)
            pg_start
            echo "export TENGE_TEST_PG_URL='$TENGE_TEST_PG_URL' TENGE_TEST_PG_DATA='$TENGE_TEST_PG_DATA'" \
                "TENGE_TEST_PG_BIN='$TENGE_TEST_PG_BIN' TENGE_TEST_PG_USER='$TENGE_TEST_PG_USER'"
            ;;
        stop)
            pg_stop
            ;;
        *)
            echo "usage: $0 start|stop (stop reads TENGE_TEST_PG_DATA)" >&2
            exit 2
            ;;
    esac
fi
