"""`warehouse-stock redrive`: apply what the event source mapping's on-failure queue recorded."""

from __future__ import annotations

import argparse

from common.adapters.config import get_settings
from common.operations.redrive import redrive
from functions.ingest_kafka.handler import handler


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "redrive",
        help="re-apply the Kafka batches the on-failure SQS queue recorded (safe to repeat)",
        description=(
            "Read the on-failure queue's records, fetch exactly those offsets from Kafka, apply them "
            "through the ingest handler, delete each message once applied. Exit 1 when it stopped early "
            "(the handler failed: the cause is probably still there) or kept a message."
        ),
    )
    parser.add_argument("--queue-url", required=True, help="the stack's IngestFailureQueueUrl output")
    parser.add_argument(
        "--max-messages", type=int, default=100, help="at most this many messages (default 100)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    report = redrive(args.queue_url, max_messages=args.max_messages, settings=get_settings(), handler=handler)
    for line in report.lines():
        print(line)
    return 1 if report.stopped or report.kept else 0
