"""kafka-python's fetched records unpacked in one pass: the same records, a fraction of its Python.

kafka-python 3.0.12 unpacks a v2 record batch one record at a time: `DefaultRecordBatch.__next__`
and `_read_msg` (a function call per varint, a `DefaultRecord`), then `PartitionRecords.
_unpack_records` reads that record back through ten properties into a `ConsumerRecord`: ~4 us a
record, of the poller's ~50 us per event. `unpack_records` is that generator with the inner loop
fused for a plain v2 batch: each record's bytes read once, straight into its `ConsumerRecord`.
Everything around it is kafka-python's code, as it is: batch order, CRC checks, transactions
(aborted batches skipped under read_committed), control batches, positions and counters. A batch
`read_batch` cannot read to its end exactly as kafka-python would (corrupt, truncated, anything
unexpected) is read by kafka-python's own record iterator, which yields the same records and
raises its own error where it fails; with deserializers the whole fetch is left to kafka-python.

This is kafka-python's private structure, so it is bound to this version: with another one
`SUPPORTED` is False and nothing changes (`tests/unit/test_fast_records.py` compares the two on
generated fetches, compressed or not, with headers, absent keys and values, damaged bytes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import kafka
import kafka.errors as errors
from kafka.consumer.fetcher import ConsumerRecord
from kafka.protocol.consumer import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.util import decode_varint

logger = logging.getLogger("functions.local_app.poller")

SUPPORTED = kafka.__version__ == "3.0.12" and all(
    hasattr(DefaultRecordBatch, name)
    for name in ("_maybe_uncompress", "_buffer", "_pos", "_num_records", "_next_record_index")
)
_new_record = tuple.__new__  # a ConsumerRecord from its 13 fields, without the namedtuple's Python __new__


def unpack_records(part: Any, tp: Any, records: Any) -> Iterator[Any]:
    """`PartitionRecords._unpack_records` of kafka-python 3.0.12 without deserializers (theirs, as
    they are, but for the `read_batch` branch): the `ConsumerRecord`s of a fetch, in order."""
    try:
        batch = records.next_batch()
        last_batch = None
        while batch is not None:
            last_batch = batch

            if part.check_crcs and not batch.validate_crc():
                raise errors.CorruptRecordError(
                    f"Record batch for partition {part.topic_partition} at offset {batch.base_offset} "
                    "failed crc check"
                )

            if batch.magic == 2:
                part.leader_epoch = batch.leader_epoch
                if part.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
                    part._consume_aborted_transactions_up_to(batch.last_offset)
                    producer_id = batch.producer_id
                    if part._contains_abort_marker(batch):
                        with contextlib.suppress(KeyError):
                            part.aborted_producer_ids.remove(producer_id)
                    elif part._is_batch_aborted(batch):
                        logger.debug(
                            "Skipping aborted record batch from partition %s with producer_id %s and"
                            " offsets %s to %s",
                            part.topic_partition, producer_id, batch.base_offset, batch.last_offset,
                        )  # fmt: skip
                        part.next_fetch_offset = batch.next_offset
                        batch = records.next_batch()
                        continue

                if batch.is_control_batch:
                    part.next_fetch_offset = batch.next_offset
                    batch = records.next_batch()
                    continue

            read = read_batch(batch, tp, part.leader_epoch) if type(batch) is DefaultRecordBatch else None
            if read is not None:
                for record, size in zip(*read, strict=True):
                    part.records_read += 1
                    part.bytes_read += size
                    part.next_fetch_offset = record[3] + 1  # its offset
                    yield record
            else:
                for record in batch:  # kafka-python's, as it is (without deserializers)
                    if part.check_crcs and not record.validate_crc():
                        raise errors.CorruptRecordError(
                            f"Record for partition {part.topic_partition} at offset {record.offset} "
                            "failed crc check"
                        )
                    key_size = len(record.key) if record.key is not None else -1
                    value_size = len(record.value) if record.value is not None else -1
                    headers = record.headers
                    header_size = (
                        sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers)
                        if headers
                        else -1
                    )
                    part.records_read += 1
                    part.bytes_read += record.size_in_bytes
                    part.next_fetch_offset = record.offset + 1
                    yield ConsumerRecord(
                        tp.topic, tp.partition, part.leader_epoch, record.offset, record.timestamp,
                        record.timestamp_type, record.key, record.value, record.headers, record.checksum,
                        key_size, value_size, header_size,
                    )  # fmt: skip

            batch = records.next_batch()
        else:
            # As kafka-python: the next fetch starts after the last batch, even if compaction
            # removed its last records.
            if last_batch and last_batch.magic == 2:
                part.next_fetch_offset = last_batch.next_offset
            part.drain()
    except StopIteration:  # as kafka-python: a StopIteration would end the generator silently
        logger.exception("StopIteration raised unpacking messageset")
        raise RuntimeError("StopIteration raised unpacking messageset") from None


def read_batch(batch: DefaultRecordBatch, tp: Any, leader_epoch: int) -> tuple[list[Any], list[int]] | None:
    """Every record of `batch` as kafka-python would yield it, with its size; None where
    kafka-python's reading would fail (or the batch was partly read already).

    The reading of `DefaultRecordBatch._read_msg`, record after record, with its checks (a
    negative header count or header key length, each record's size, bytes left after the last
    record); a one-byte varint is decoded inline, longer ones by kafka-python's `decode_varint`.
    """
    if batch._next_record_index or batch.is_control_batch:
        return None
    try:
        batch._maybe_uncompress()
        buffer = bytes(batch._buffer)
        pos = batch._pos
        topic, partition = tp.topic, tp.partition
        base_offset = batch.base_offset
        timestamp_type = batch.timestamp_type
        first_timestamp = batch.first_timestamp
        append_time = timestamp_type == batch.LOG_APPEND_TIME
        max_timestamp = batch.max_timestamp
        read: list[Any] = []
        sizes: list[int] = []
        for _ in range(batch._num_records):
            b = buffer[pos]
            if b < 0x80:
                length, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                length, pos = decode_varint(buffer, pos)
            start = pos
            if buffer[pos] < 0x80:  # attributes: unused, as in kafka-python
                pos += 1
            else:
                _, pos = decode_varint(buffer, pos)
            b = buffer[pos]
            if b < 0x80:
                timestamp_delta, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                timestamp_delta, pos = decode_varint(buffer, pos)
            b = buffer[pos]
            if b < 0x80:
                offset_delta, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                offset_delta, pos = decode_varint(buffer, pos)
            b = buffer[pos]
            if b < 0x80:
                key_size, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                key_size, pos = decode_varint(buffer, pos)
            key = None
            if key_size >= 0:
                key = buffer[pos : pos + key_size]
                pos += key_size
            b = buffer[pos]
            if b < 0x80:
                value_size, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                value_size, pos = decode_varint(buffer, pos)
            value = None
            if value_size >= 0:
                value = buffer[pos : pos + value_size]
                pos += value_size
            b = buffer[pos]
            if b < 0x80:
                count, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                count, pos = decode_varint(buffer, pos)
            if count < 0:
                return None
            headers: list[tuple[str, bytes | None]] = []
            header_size = -1
            if count:
                header_size = 0
                while count:
                    size, pos = decode_varint(buffer, pos)
                    if size < 0:
                        return None
                    header_key = buffer[pos : pos + size].decode("utf-8")
                    pos += size
                    size, pos = decode_varint(buffer, pos)
                    header_value = None
                    if size >= 0:
                        header_value = buffer[pos : pos + size]
                        pos += size
                    headers.append((header_key, header_value))
                    header_size += len(header_key.encode("utf-8")) + (
                        len(header_value) if header_value is not None else 0
                    )
                    count -= 1
            if pos - start != length:
                return None
            offset = base_offset + offset_delta
            timestamp = max_timestamp if append_time else first_timestamp + timestamp_delta
            read.append(
                _new_record(
                    ConsumerRecord,
                    (
                        topic,
                        partition,
                        leader_epoch,
                        offset,
                        timestamp,
                        timestamp_type,
                        key,
                        value,
                        headers,
                        None,
                        len(key) if key is not None else -1,
                        len(value) if value is not None else -1,
                        header_size,
                    ),
                )
            )
            sizes.append(length)
        if pos != len(buffer):
            return None
        return read, sizes
    except (ValueError, IndexError):  # what kafka-python reports as a CorruptRecordError
        return None
