"""Local stand-in for the Lambda event source mapping: a Kafka consumer feeding the same core.

Each poll is one batch. By default it goes to the ledger straight from the client's records
(`common.intake.kafka_records.ingest_consumer_records`: the record-level step the Lambda handler's
MSK-event path ends in too, without building an event and decoding its base64 again; a `handler`
given to the Poller gets the MSK-shaped event instead, as Lambda would). With
`KAFKA_APPLY_AHEAD=true` (and no `handler` given) the poller decodes batch N+1 while batch N
commits on a thread of its own (`common.intake.apply_ahead.ApplyAhead`: one batch in flight,
batches applied in poll order, each in one transaction, the same record identities). It is off by
default: on the 2-core development machine an interleaved A/B showed no gain beyond the
run-to-run noise (docs/performance.md).

A batch the client cannot decode pauses its partition only (`undecodable`, `control`): reported
in the log, `warehouse_poller_paused_partitions`, /ready and the console, until an operator
resumes it or skips the batch (a dead letter). A watchdog in `make run`'s supervisor restarts a
poller whose loop stopped finishing iterations; SIGTERM ends a poller within seconds.

Offsets are committed only after the batch was applied, and exactly the next offset per
partition; when applying raises (PostgreSQL down, lost races beyond the retries) nothing is
committed, the consumer seeks back to the first offset of the batch (and of the one polled after
it) and the batch is retried after a growing, bounded backoff, so no record is ever skipped. A
commit lost after a successful apply only means a redelivery, which the ledger makes a no-op.

Where it reads from is decided here, never silently by the client (`auto_offset_reset` is off):

- no committed offset (a new group; or the topic was deleted, which drops its committed
  offsets): from the beginning of the log;
- an offset outside the log (committed or held beyond the end of a topic created again, or
  before its start after retention): a warning naming topic, partition, position and the log's
  range, then from the beginning;
- a topic deleted and created again while this poller runs keeps the same partitions, so the
  consumer would go on from its old position and skip the new topic's first records. Before each
  batch is applied the topic's id (KIP-516) is compared with the one seen before; on a change
  the batch is dropped and every partition of the topic is read again from its beginning;
- every commit carries the topic id in its metadata, and a partition handed to this poller is
  checked once against it: an offset committed for an earlier topic of that name (a batch in
  flight during the recreation commits onto the new topic) is not resumed from.

Each of these is logged and counted in `warehouse_poller_offset_resets_total{topic,partition,
reason}`. The event carries the cluster's id (`eventSourceArn`), so two clusters with the same
topic names and offsets never look like one to the ledger.

The client connects as `common.adapters.kafka_settings` says (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL;
PLAIN, SCRAM, MSK IAM). Before building a consumer it checks TLS and SASL once itself: a wrong
password puts the poller in state `authentication_failed` with the broker's reason (shown by
/ready), logged once, retried with a growing backoff without building consumers.

Every lag interval the lag per partition is exported (`warehouse_poller_lag`) and upserted
into `consumer_lag` for the console (best effort).

The package: `loop` (the Poller: consume, apply, commit), `consumer` (connecting, the client),
`positions` (where to read from), `lag` (lag reporting), `undecodable` and `control` (a batch the
client cannot decode, pauses, the operator's commands, the heartbeat), `__main__` (the process).

Run standalone with `python -m functions.local_app.poller` (SIGTERM/SIGINT stop it gracefully:
the current batch finishes, its offsets are committed, the consumer leaves the group).

The poller takes its Kafka settings from the `Settings` it is given; the database and cache
come, as for every entry point, from the process-wide configuration.
"""

from functions.local_app.poller.loop import Poller, build_event

__all__ = ["Poller", "build_event"]
