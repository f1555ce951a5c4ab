#!/bin/sh
# On an empty data directory: a cluster whose superuser is POSTGRES_USER with
# POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE), a database POSTGRES_DB, and
# password logins from the network. Then the server, as the postgres user.
set -eu

: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
fi
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres: set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE)" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    # The database, made by a server that listens on its socket only, so that
    # nothing counts it as ready before it exists.
    as_postgres pg_ctl --silent --wait --options="-c listen_addresses=''" start
    [ "$POSTGRES_DB" = postgres ] || as_postgres createdb --username="$POSTGRES_USER" "$POSTGRES_DB"
    as_postgres pg_ctl --silent --wait --mode=fast stop
fi

if [ "$1" = postgres ]; then
    shift
    exec setpriv --reuid=postgres --regid=postgres --init-groups \
        postgres -c listen_addresses='*' "$@"
fi
exec "$@"
