#!/bin/sh
# Gives the node its Erlang cookie and default user from the deployment's
# secrets at start (never from the image), then runs it as the rabbitmq user.
#
#   /run/secrets/rabbitmq_cookie   the cookie every node of the cluster shares
#   RABBITMQ_DEFAULT_USER, RABBITMQ_DEFAULT_PASS (or RABBITMQ_DEFAULT_PASS_FILE)
#                                  the user the first node creates
set -eu

cookie_file=${RABBITMQ_COOKIE_FILE:-/run/secrets/rabbitmq_cookie}
if [ ! -s "$cookie_file" ]; then
    echo "rabbitmq: no Erlang cookie at $cookie_file (the rabbitmq_cookie secret)" >&2
    exit 1
fi
install -o rabbitmq -g rabbitmq -m 400 "$cookie_file" /var/lib/rabbitmq/.erlang.cookie

if [ -n "${RABBITMQ_DEFAULT_PASS_FILE:-}" ]; then
    RABBITMQ_DEFAULT_PASS=$(cat "$RABBITMQ_DEFAULT_PASS_FILE")
fi
if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then
    # rabbitmq.conf is line based: a password that could end the line or start
    # a comment would be cut short without a word, so it is refused here.
    case "$RABBITMQ_DEFAULT_PASS$RABBITMQ_DEFAULT_USER" in
        *'#'* | *' '* | *'
'*)
            echo "rabbitmq: RABBITMQ_DEFAULT_USER/PASS may not hold '#', spaces or new lines" >&2
            exit 1 ;;
    esac
    umask 027
    printf 'default_user = %s\ndefault_pass = %s\n' \
        "${RABBITMQ_DEFAULT_USER:-bookstore}" "$RABBITMQ_DEFAULT_PASS" \
        > /etc/rabbitmq/conf.d/90-default-user.conf
    chgrp rabbitmq /etc/rabbitmq/conf.d/90-default-user.conf
fi

chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
# Debian's wrapper switches to the rabbitmq user itself.
exec "$@"
