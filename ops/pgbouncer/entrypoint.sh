#!/bin/sh
# The lookup role's auth file from the environment (never baked into the image), then PgBouncer.
set -eu
: "${POOLER_PASSWORD:?set POSTGRES_POOLER_PASSWORD in .env}"
umask 077
printf '"botfleet_pooler" "%s"\n' "$(printf '%s' "$POOLER_PASSWORD" | sed 's/"/""/g')" \
  > /tmp/userlist.txt
exec pgbouncer /etc/botfleet-pgbouncer/pgbouncer.ini
