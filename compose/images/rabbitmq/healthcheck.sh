#!/bin/bash
# Healthy when the node answers AMQP: it opens its listener only once it has
# booted, and a joining node only once it has joined its cluster. Costs a
# connection, not the Erlang VM that `rabbitmq-diagnostics` starts (about a
# second of CPU per check: a tenth of a core per node at a 10 s interval).
exec 3<>/dev/tcp/127.0.0.1/5672 || exit 1
# The AMQP 0-9-1 protocol header; the node answers with a method frame
# (type 1), its connection.start.
printf 'AMQP\0\0\x09\x01' >&3
IFS= read -r -N 1 -t 5 frame <&3 && [ "$frame" = $'\x01' ]
