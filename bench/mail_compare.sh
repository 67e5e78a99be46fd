#!/bin/sh
# The mail benchmark, portaum_tx against Dovecot + Postfix on this machine with
# the same load, alternating runs (best of $RUNS each).  Needs root for the
# Dovecot/Postfix setup.  Extra arguments go to bench/mail_portaum.sh, e.g.
#   sh bench/mail_compare.sh --set storage.sqlite_synchronous=normal
set -e
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-15}
# Daemons keep the streams they start with: give them /dev/null.
sh bench/mail_setup.sh >/dev/null 2>&1 </dev/null
sh bench/mail_portaum.sh "$@" >/dev/null
echo "populate portaum_tx: $(python3 bench/mail_bench.py populate --imap-port 21143 --smtp-port 21025)"
echo "populate dovecot+postfix: $(python3 bench/mail_bench.py populate --imap-port 31143 --smtp-port 31025)"
for run in $(seq 1 "$RUNS"); do
    echo "imap portaum_tx: $(python3 bench/mail_bench.py imap --imap-port 21143 --seconds "$SECONDS_PER_RUN")"
    echo "imap dovecot: $(python3 bench/mail_bench.py imap --imap-port 31143 --seconds "$SECONDS_PER_RUN")"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
for run in $(seq 1 "$RUNS"); do
    echo "smtp portaum_tx: $(python3 bench/mail_bench.py smtp --imap-port 21143 --smtp-port 21025 --seconds "$SECONDS_PER_RUN")"
    echo "smtp postfix+dovecot: $(python3 bench/mail_bench.py smtp --imap-port 31143 --smtp-port 31025 --seconds "$SECONDS_PER_RUN")"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
done
kill "$(cat /var/tmp/bench-portaum/twistd.pid)"
