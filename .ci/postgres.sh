# Start a throw-away PostgreSQL server for the store tests and export its URL.
#
#   source .ci/postgres.sh        # exports HKS_TEST_POSTGRES_URL (and HKS_TEST_POSTGRES_DIR)
#   hks_postgres_stop             # stops it and removes its data folder
#
# Installs Debian's postgresql when its binaries are missing. The server runs as the
# unprivileged 'postgres' user (it refuses root), listens on 127.0.0.1 only, on a free port,
# with password authentication for a user 'hks' whose random password is only in the URL.

hks_postgres_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

hks_postgres_start() {
    local bin port dir password
    if ! bin=$(hks_postgres_bin); then
        echo "postgres.sh: installing Debian's postgresql" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || return 1
        bin=$(hks_postgres_bin) || { echo "postgres.sh: no initdb after install" >&2; return 1; }
    fi
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres || return 1
    cd / || return 1  # runuser keeps the cwd, which the postgres user may not be allowed to enter
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    dir=$(mktemp -d /tmp/hks-postgres.XXXXXX)
    password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    chown postgres "$dir"
    printf '%s\n' "$password" > "$dir/pwfile"
    chown postgres "$dir/pwfile"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U hks --pwfile="$dir/pwfile" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; return 1; }
    rm -f "$dir/pwfile"
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    PGPASSWORD=$password "$bin/createdb" -h 127.0.0.1 -p "$port" -U hks hks_test || return 1
    cd - >/dev/null || return 1
    export HKS_TEST_POSTGRES_DIR="$dir"
    export HKS_TEST_POSTGRES_URL="postgresql://hks:$password@127.0.0.1:$port/hks_test"
    echo "postgres.sh: PostgreSQL ready on 127.0.0.1:$port (HKS_TEST_POSTGRES_URL exported)"
}

hks_postgres_stop() {
    local bin
    [ -n "${HKS_TEST_POSTGRES_DIR:-}" ] || return 0
    bin=$(hks_postgres_bin) && (cd / && runuser -u postgres -- "$bin/pg_ctl" -D "$HKS_TEST_POSTGRES_DIR/data" \
        -m fast stop >/dev/null)
    rm -rf "$HKS_TEST_POSTGRES_DIR"
    unset HKS_TEST_POSTGRES_DIR HKS_TEST_POSTGRES_URL
}

hks_postgres_start
