"""`warehouse-stock poller resume|skip TOPIC PARTITION`: answer a partition a poller paused.

A poller pauses a partition on a record batch it cannot decode (functions/local_app/poller/control.py).
`resume` reads it again (after the cause was fixed, e.g. a codec library installed); `skip` records
the batch as a dead letter (coordinates, reason, raw bytes) and reads on after it. The poller holding
the pause carries the command out within a few seconds; this waits for it (`--wait`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from common.adapters import consumer_lag
from common.adapters.config import get_settings
from common.adapters.db import get_pool
from common.reads.summary import LAG_FRESH_SECONDS


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "poller",
        help="resume a partition a poller paused on an undecodable batch, or skip that batch",
        description=(
            "Answer a partition paused on a record batch the poller cannot decode: resume it (after "
            "fixing the cause) or skip the batch (kept as a dead letter). One JSON line on stdout."
        ),
    )
    parser.add_argument("action", choices=["resume", "skip"])
    parser.add_argument("topic")
    parser.add_argument("partition", type=int)
    parser.add_argument("--group", help="the consumer group (default: KAFKA_GROUP_ID)")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the poller (0: don't)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    group = args.group or get_settings().kafka_group_id
    with get_pool().connection() as conn:
        command_id, pause = consumer_lag.request_if_paused(
            conn, group, args.topic, args.partition, args.action, LAG_FRESH_SECONDS
        )
    if command_id is None or pause is None:
        print(
            f"poller: {args.topic}-{args.partition} is not reported paused (group {group})", file=sys.stderr
        )
        return 1
    deadline = time.monotonic() + args.wait
    done_at, outcome = None, None
    while args.wait > 0 and time.monotonic() < deadline:
        with get_pool().connection() as conn:
            done_at, outcome = consumer_lag.command(conn, command_id)
        if done_at is not None:
            break
        time.sleep(0.5)
    print(
        json.dumps(
            {
                "command_id": command_id,
                "action": args.action,
                "topic": args.topic,
                "partition": args.partition,
                "paused_offset": pause.paused_offset,
                "done": done_at is not None,
                "outcome": outcome,
            }
        )
    )
    if done_at is None and args.wait > 0:
        print(f"poller: command {command_id} not carried out within {args.wait:.0f} s", file=sys.stderr)
        return 1
    return 0
