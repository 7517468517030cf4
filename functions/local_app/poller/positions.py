"""Where a poller reads from: no committed offset, out of range, truncated, a recreated topic."""

from __future__ import annotations

import logging
from typing import Any

from common.adapters import observability
from common.adapters.config import Settings
from functions.local_app.poller.consumer import MISSING, REQUEST_BUDGET_MS, TOPIC_ID_PREFIX, _topic_ids

logger = logging.getLogger("functions.local_app.poller")  # one logger for the package


class PositionsMixin:
    """Re-positionings, each logged and counted in `warehouse_poller_offset_resets_total`."""

    settings: Settings
    _consumer: Any
    _admin: Any
    _topic_ids: dict[str, str]
    _checked: set[Any]
    resets: list[tuple[str, int, str]]

    def _rewind(self, polled: dict[Any, list[Any]]) -> None:
        raise NotImplementedError  # the loop's

    def _reset(self, tp: Any, reason: str, message: str, *args: Any) -> None:
        self.resets.append((tp.topic, tp.partition, reason))
        observability.count_offset_reset(tp.topic, tp.partition, reason)
        logger.warning(message, *args)

    def _log_range(self, partitions: list[Any]) -> dict[Any, tuple[int | None, int | None]]:
        """(first, end) offset of each partition's log, (None, None) when the broker cannot say."""
        try:
            first = self._consumer.beginning_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
            end = self._consumer.end_offsets(partitions, timeout_ms=REQUEST_BUDGET_MS)
        except Exception:
            logger.debug("reading the log range failed", exc_info=True)
            return {tp: (None, None) for tp in partitions}
        return {tp: (first.get(tp), end.get(tp)) for tp in partitions}

    def _from_beginning(self, partitions: list[Any], reason: str) -> None:
        """No committed offset: a new group, or a deleted topic's offsets were dropped."""
        if not partitions:
            return
        for tp, (first, end) in self._log_range(partitions).items():
            self.resets.append((tp.topic, tp.partition, reason))
            observability.count_offset_reset(tp.topic, tp.partition, reason)
            # Seen before by this process: the broker dropped the offsets with a deleted topic.
            seen = tp.topic in self._topic_ids
            logger.log(
                logging.WARNING if seen else logging.INFO,
                "kafka %s-%d has no committed offset for group %s%s: reading from the beginning (log %s..%s)",
                tp.topic,
                tp.partition,
                self.settings.kafka_group_id,
                " any more (the topic was deleted and created again?)" if seen else "",
                first,
                end,
            )
        self._consumer.seek_to_beginning(*partitions)

    def _out_of_range(self, positions: dict[Any, int]) -> None:
        """An offset outside the log: beyond its end (topic recreated) or before its start (retention)."""
        if not positions:
            self._consumer.seek_to_beginning(*self._consumer.assignment())
            return
        for tp, (first, end) in self._log_range(list(positions)).items():
            offset = positions[tp]
            if end is not None and offset > end:
                self._reset(
                    tp,
                    "beyond_log_end",
                    "kafka %s-%d: position %d is beyond the log (%s..%s), so the topic was deleted and "
                    "created again: reading the new topic from its beginning, skipping nothing",
                    tp.topic,
                    tp.partition,
                    offset,
                    first,
                    end,
                )
            else:
                self._reset(
                    tp,
                    "before_log_start",
                    "kafka %s-%d: position %d is before the log's start (%s..%s): records below %s were "
                    "deleted by retention before this group read them; reading from the first one left",
                    tp.topic,
                    tp.partition,
                    offset,
                    first,
                    end,
                    first,
                )
        self._consumer.seek_to_beginning(*positions)

    def _truncated(self, divergent: dict[Any, Any]) -> None:
        """The leader's log lost records we read (unclean election): back to the diverging point."""
        for tp, point in divergent.items():
            target = point.offset if point is not None else None
            self._reset(
                tp,
                "log_truncated",
                "kafka %s-%d: the log was truncated below our position; reading again from %s",
                tp.topic,
                tp.partition,
                target if target is not None else "the beginning",
            )
            if target is not None:
                self._consumer.seek(tp, target)
            else:
                self._consumer.seek_to_beginning(tp)

    def _verified(self, polled: dict[Any, list[Any]]) -> dict[Any, list[Any]]:
        """The polled records whose topic is still the one seen before (by topic id).

        A topic deleted and created again keeps its name and partitions but gets a new id; its
        records fetched from a stale position are dropped and the topic read from its beginning.
        """
        if self._admin is None:
            return polled
        topics = {tp.topic for tp in polled}
        # Partitions handed to us since the last look resume from a committed offset: check it.
        self._checked &= set(self._consumer.assignment())
        try:
            current = _topic_ids(self._admin, topics)
            unchecked = [
                tp for tp in polled if tp not in self._checked and isinstance(current.get(tp.topic), str)
            ]
            committed_for = self._committed_topic_ids(unchecked) if unchecked else {}
        except Exception:
            self._rewind(polled)  # nothing of this batch may be skipped
            raise
        kept: dict[Any, list[Any]] = {}
        for topic in topics:
            mine = {tp: batch for tp, batch in polled.items() if tp.topic == topic}
            now = current.get(topic)
            if now is MISSING:
                logger.warning(
                    "kafka topic %s is not in the cluster's metadata (deleted?): holding its records", topic
                )
                self._rewind(mine)
                continue
            if now is None:  # a broker without topic ids (before Kafka 2.8): cannot tell
                kept.update(mine)
                continue
            known = self._topic_ids.get(topic)
            if known is not None and known != now:
                self._recreated(topic, known, str(now), mine)
                continue
            self._topic_ids[topic] = str(now)
            for tp in [tp for tp in mine if committed_for.get(tp) not in (None, now)]:
                self._stale_commit(tp, str(committed_for[tp]), str(now), mine.pop(tp))
            self._checked.update(mine)
            kept.update(mine)
        return kept

    def _committed_topic_ids(self, partitions: list[Any]) -> dict[Any, str | None]:
        """The topic id each partition's committed offset was committed for (None: not recorded)."""
        group = self.settings.kafka_group_id
        answer = self._admin.list_group_offsets({group: partitions}).get(group, {})
        found: dict[Any, str | None] = {}
        for tp in partitions:
            meta = answer.get(tp)
            text = getattr(meta, "metadata", None) or ""
            found[tp] = text[len(TOPIC_ID_PREFIX) :] if text.startswith(TOPIC_ID_PREFIX) else None
        return found

    def _stale_commit(self, tp: Any, committed_id: str, now: str, batch: list[Any]) -> None:
        at = batch[0].offset if batch else None
        first, end = self._log_range([tp]).get(tp, (None, None))
        self._reset(
            tp,
            "topic_recreated",
            "kafka %s-%d: the group's committed offset %s was committed for an earlier topic of that name "
            "(id %s, now %s: it was deleted and created again); dropping the %d record(s) fetched and "
            "reading the new topic from its beginning (log %s..%s), skipping nothing",
            tp.topic,
            tp.partition,
            at,
            committed_id,
            now,
            len(batch),
            first,
            end,
        )
        self._consumer.seek_to_beginning(tp)
        self._checked.add(tp)

    def _recreated(self, topic: str, old_id: str, new_id: str, polled: dict[Any, list[Any]]) -> None:
        assigned = [tp for tp in self._consumer.assignment() if tp.topic == topic]
        ranges = self._log_range(assigned)
        for tp in assigned:
            batch = polled.get(tp)
            at = batch[0].offset if batch else None
            first, end = ranges.get(tp, (None, None))
            self._reset(
                tp,
                "topic_recreated",
                "kafka topic %s was deleted and created again (id %s -> %s): partition %d was read from "
                "offset %s, the new log is %s..%s; dropping the %d record(s) fetched and reading the new "
                "topic from its beginning, skipping nothing",
                topic,
                old_id,
                new_id,
                tp.partition,
                at,
                first,
                end,
                len(batch or []),
            )
        self._topic_ids[topic] = new_id
        if assigned:
            self._consumer.seek_to_beginning(*assigned)
            self._checked.update(assigned)
