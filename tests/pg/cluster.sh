#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests, on 127.0.0.1 and a free port.
#
#   eval "$(bash tests/pg/cluster.sh start DIR)"   # prints the variables to export
#   bash tests/pg/cluster.sh stop DIR              # stops it by its PID
#
# The cluster lives in DIR (made if missing) and runs as an unprivileged user
# (`postgres` when started as root, else the caller). Authentication: the
# superuser `helpdesk` is trusted over TCP; the role `hd_password` (password
# `hd-secret`) must give its password; TLS is on with a certificate for
# localhost/127.0.0.1 signed by DIR/ca.crt. fsync is off: nothing here needs
# to survive a power cut.
#
# It prints: HELPDESK_TEST_PG (a URL for the superuser), HELPDESK_TEST_PG_CA,
# HELPDESK_TEST_PG_PID.
set -euo pipefail

action=${1:-}
dir=${2:-}
[ -n "$action" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

bin=""
for candidate in /usr/lib/postgresql/*/bin; do
  [ -x "$candidate/initdb" ] && bin=$candidate
done
if [ -z "$bin" ] && command -v initdb >/dev/null; then bin=$(dirname "$(command -v initdb)"); fi

stop() {
  local pidfile="$dir/data/postmaster.pid"
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(head -n 1 "$pidfile")
  # SIGINT: PostgreSQL's fast shutdown (ends sessions, no waiting for clients).
  kill -INT "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

case "$action" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

[ -n "$bin" ] || { echo "PostgreSQL's server is not installed: apt-get install postgresql" >&2; exit 1; }

as_user=()
if [ "$(id -u)" = 0 ]; then
  as_user=(runuser -u postgres --)
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
[ "$(id -u)" = 0 ] && chown postgres: "$dir"
chmod 700 "$dir"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# TLS: a CA, and a server certificate for localhost and 127.0.0.1 signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=helpdesk test PostgreSQL CA" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" >/dev/null 2>&1
chmod 600 "$dir/server.key"
chmod 644 "$dir/ca.crt"
[ "$(id -u)" = 0 ] && chown postgres: "$dir"/server.* "$dir"/ca.*

"${as_user[@]}" "$bin/initdb" -D "$dir/data" -U helpdesk --auth=trust --no-sync -E UTF8 \
  --locale=C.UTF-8 >"$dir/initdb.log" 2>&1

cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 300
fsync = off
full_page_writes = off
synchronous_commit = off
ssl = on
ssl_cert_file = '$dir/server.crt'
ssl_key_file = '$dir/server.key'
CONF

cat > "$dir/data/pg_hba.conf" <<HBA
local all all trust
host  all hd_password 127.0.0.1/32 scram-sha-256
host  all all         127.0.0.1/32 trust
HBA

"${as_user[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
"${as_user[@]}" "$bin/psql" -h "$dir" -p "$port" -U helpdesk -d postgres -q -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE hd_password LOGIN CREATEDB PASSWORD 'hd-secret'" >/dev/null

echo "export HELPDESK_TEST_PG=postgresql://helpdesk@127.0.0.1:$port/postgres"
echo "export HELPDESK_TEST_PG_CA=$dir/ca.crt"
echo "export HELPDESK_TEST_PG_PID=$(head -n 1 "$dir/data/postmaster.pid")"
