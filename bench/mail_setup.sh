#!/bin/sh
# Installs and starts Dovecot (IMAP 127.0.0.1:31143) and Postfix (SMTP
# 127.0.0.1:31025, delivering over LMTP into Dovecot's Maildirs) for the mail
# benchmark, with the same ten users the portaum_tx run gets:
# user01..user10@bench.example, password bench-pass-1.
# Run as root: sh bench/mail_setup.sh    Stop: sh bench/mail_setup.sh stop
set -e
if [ "$1" = stop ]; then
    doveadm -c /work/main/bench/mail_dovecot.conf stop 2>/dev/null || true
    postfix stop 2>/dev/null || true
    exit 0
fi
HERE=$(cd "$(dirname "$0")" && pwd)
export DEBIAN_FRONTEND=noninteractive
command -v dovecot >/dev/null && command -v postfix >/dev/null || \
    apt-get install -y -q dovecot-imapd dovecot-lmtpd postfix
id benchmail >/dev/null 2>&1 || useradd -r -d /var/tmp/bench-mail -s /usr/sbin/nologin benchmail
mkdir -p /var/tmp/bench-dovecot /var/tmp/bench-mail
rm -rf /var/tmp/bench-mail/*
chown benchmail:benchmail /var/tmp/bench-mail
: > /var/tmp/bench-dovecot/users
: > /etc/postfix/bench_users
for n in 01 02 03 04 05 06 07 08 09 10; do
    echo "user$n:{PLAIN}bench-pass-1" >> /var/tmp/bench-dovecot/users
    echo "user$n@bench.example OK" >> /etc/postfix/bench_users
done
postmap /etc/postfix/bench_users
postconf -e "inet_interfaces = loopback-only" "mydestination =" \
    "mynetworks = 127.0.0.0/8" "virtual_mailbox_domains = bench.example" \
    "virtual_mailbox_maps = hash:/etc/postfix/bench_users" \
    "virtual_transport = lmtp:unix:private/bench-dovecot-lmtp" \
    "smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination" \
    "maillog_file = /var/log/postfix-bench.log" "message_size_limit = 26214400" \
    "smtpd_banner = bench.example ESMTP"
postconf -M "127.0.0.1:31025/inet=127.0.0.1:31025 inet n - n - - smtpd"
mkdir -p /var/spool/postfix/private
doveadm -c "$HERE/mail_dovecot.conf" stop 2>/dev/null || true
dovecot -c "$HERE/mail_dovecot.conf"
postfix stop 2>/dev/null || true
postfix start
echo "Dovecot IMAP on 127.0.0.1:31143, Postfix SMTP on 127.0.0.1:31025"
