#!/bin/sh
# Starts portaum_tx for the mail benchmark (IMAP 127.0.0.1:21143, SMTP
# 127.0.0.1:21025; bench/mail_portaum.conf) on a fresh store with the ten
# benchmark users.  Extra arguments are --set overrides, e.g.
#   sh bench/mail_portaum.sh --set storage.engine=postgres --set "storage.postgres_dsn=..."
# Stop it with: kill $(cat /var/tmp/bench-portaum/twistd.pid)
set -e
cd "$(dirname "$0")/.."
CONF=bench/mail_portaum.conf
if [ -f /var/tmp/bench-portaum/twistd.pid ]; then
    kill "$(cat /var/tmp/bench-portaum/twistd.pid)" 2>/dev/null || true
    sleep 2
fi
rm -rf /var/tmp/bench-portaum
mkdir -p /var/tmp/bench-portaum
admin() { python3 -m portaum_tx.admin --config "$CONF" "$@" >/dev/null; }
admin "$@" customer add bench
for n in 01 02 03 04 05 06 07 08 09 10; do
    admin "$@" account add "20000000$n" --customer bench --password bench-pass-1 \
        --email "user$n@bench.example" --quota 1G
    admin "$@" alias add "user$n" --account "20000000$n"
done
PYTHONPATH=. twistd --pidfile /var/tmp/bench-portaum/twistd.pid --logfile /var/tmp/bench-portaum/twistd.log \
    portaum --config "$CONF" "$@"
for i in $(seq 1 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', 21143), 1).close()" \
        2>/dev/null && break
    sleep 0.2
done
echo "portaum_tx IMAP on 127.0.0.1:21143, SMTP on 127.0.0.1:21025"
