"""python -m events dead-letters {list,replay}: operating the dead-letter queues."""

from __future__ import annotations

import argparse
import sys

from events.amqp import BrokerEnv
from events.environment import exit_on_config_error
from events.operators import NoSuchQueue, consumer_queues, dead_letters, one_line, replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m events", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dead = commands.add_parser("dead-letters", help="list or replay parked messages")
    actions = dead.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="show parked messages and why (nothing is consumed)")
    listing.add_argument("--consumer", help="e.g. worker.emails or recommender.<instance>")
    listing.add_argument("--limit", type=int, default=100)
    again = actions.add_parser("replay", help="send parked messages back to their consumer")
    again.add_argument("--consumer", required=True)
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id")
    which.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)

    with exit_on_config_error():
        broker = BrokerEnv.from_env()
    try:
        queues = consumer_queues(broker.topology, args.consumer)
    except (KeyError, ValueError) as exc:
        parser.exit(2, f"{exc}\n")
    url = broker.amqp_url
    if args.action == "list":
        total = 0
        for spec in queues:
            for parked in dead_letters(url, spec, limit=args.limit):
                total += 1
                fields = (spec.dead_letter_queue, parked.event_type, parked.event_id, parked.reason)
                print("\t".join(one_line(field) for field in fields))
        print(f"{total} parked message(s)", file=sys.stderr)
        return 0
    try:
        count = replay(url, queues[0], event_id=args.event_id, everything=args.all)
    except NoSuchQueue as exc:
        parser.exit(1, f"{exc}: nothing replayed (its consumer declares it when it starts)\n")
    print(f"replayed {count} message(s) to {queues[0].name}")
    return 0 if count or args.all else 1


if __name__ == "__main__":
    sys.exit(main())
