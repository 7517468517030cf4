"""What the suite checks after each phase, with the stream drained: the ledger against the model,
the stock in PostgreSQL and over HTTP, the books (reconcile), the reads during the phase, and the
logs (no secret printed).
"""

from __future__ import annotations

import httpx
import psycopg

from common.operations.reconcile import reconcile
from tools.chaos.phases import PhaseReport, SuiteState
from tools.chaos.workload import Item


class Checks(SuiteState):
    def verify(self, report: PhaseReport, items: list[Item]) -> None:
        report.sent = len(items)
        report.kafka = sum(i.path == "kafka" for i in items)
        report.webhook = report.sent - report.kafka
        report.duplicates = sum(i.kind == "duplicate" for i in items)
        try:
            with psycopg.connect(self.stack.database_url, connect_timeout=10) as conn:
                self.verify_ledger(report, items, conn)
                self.verify_stock(report, conn)
            with psycopg.connect(self.stack.database_url, autocommit=True, connect_timeout=10) as conn:
                self.verify_books(report, conn)
        except psycopg.Error as exc:
            report.problems.append(f"verification query failed: {exc}")

    def verify_books(self, report: PhaseReport, conn: psycopg.Connection) -> None:
        """`warehouse-stock reconcile` over the whole database: every discrepancy fails the phase."""
        books = reconcile(conn)
        report.books_ok = books.ok
        report.problems += [f"books: {d.line()}" for d in books.discrepancies]
        report.notes += [f"books note: {n.line()}" for n in books.notes]

    def verify_ledger(self, report: PhaseReport, items: list[Item], conn: psycopg.Connection) -> None:
        valid = {i.event_key for i in items if i.kind == "valid" and i.event_key}
        movement_ids = list({key[0] for key in valid})
        found = {
            (mid, event)
            for mid, event in conn.execute(
                "SELECT movement_id, event FROM movement_events WHERE movement_id = ANY(%s)", (movement_ids,)
            )
        }
        report.applied = len(valid & found)
        missing = valid - found
        if missing:
            report.problems.append(f"{len(missing)} valid event(s) never applied, e.g. {sorted(missing)[:2]}")
        total = conn.execute("SELECT count(*) FROM movement_events").fetchone()
        if total is None or total[0] != len(self.model.valid_events):
            report.problems.append(
                f"movement_events holds {total[0] if total else '?'} rows, "
                f"{len(self.model.valid_events)} distinct valid events were sent"
            )
        parked = {
            (partition, offset): reason
            for partition, offset, reason in conn.execute(
                "SELECT kafka_partition, kafka_offset, reason FROM rejected_events WHERE kafka_topic = %s",
                (self.stack.topic,),
            )
        }
        for item in items:
            if item.path == "kafka":
                self.verify_kafka_item(report, item, parked)
            else:
                self.verify_webhook_item(report, item, conn)

    def verify_kafka_item(self, report: PhaseReport, item: Item, parked: dict[tuple[int, int], str]) -> None:
        if not item.offsets:
            report.problems.append(f"kafka {item.kind} record has no acknowledged offset")
            return
        if item.kind in ("bad", "insufficient"):
            want = "invalid" if item.kind == "bad" else "insufficient_stock"
            for where in item.offsets:
                if parked.get(where) != want:
                    report.problems.append(
                        f"kafka {item.kind} record at {where} parked as {parked.get(where)}"
                    )
                    return
            report.parked += 1
        elif any(where in parked for where in item.offsets):
            report.problems.append(f"kafka {item.kind} record at {item.offsets} was parked")

    def verify_webhook_item(self, report: PhaseReport, item: Item, conn: psycopg.Connection) -> None:
        answer = item.answer or {}
        if item.status is None:
            report.problems.append(f"webhook {item.kind}: no answer ({item.error})")
        elif item.kind in ("valid", "duplicate"):
            if item.status != 200 or answer.get("status") not in ("applied", "duplicate"):
                report.problems.append(f"webhook {item.kind}: {item.status} {str(answer)[:200]}")
        elif item.kind == "bad":
            if item.status not in (413, 422):
                report.problems.append(f"webhook bad payload: {item.status} {str(answer)[:200]}")
            report.refused += 1
        else:  # insufficient
            rejected_id = answer.get("rejected_event_id")
            row = conn.execute("SELECT reason FROM rejected_events WHERE id = %s", (rejected_id,)).fetchone()
            if item.status != 409 or row is None or row[0] != "insufficient_stock":
                report.problems.append(f"webhook insufficient departure: {item.status} {answer}, row {row}")
            else:
                report.parked += 1

    def verify_stock(self, report: PhaseReport, conn: psycopg.Connection) -> None:
        rows = dict(
            ((w, p), q) for w, p, q in conn.execute("SELECT warehouse_id, product_id, quantity FROM stock")
        )
        wrong = [(k, rows.get(k), want) for k, want in self.model.stock.items() if rows.get(k) != want]
        if rows.get(self.model.empty, 0) != 0:
            wrong.append((self.model.empty, rows.get(self.model.empty), 0))
        http_wrong = []
        with httpx.Client(timeout=20) as client:
            for (w, p), want in self.model.stock.items():
                response = client.get(f"{self.base_url}/api/v1/warehouse/{w}/products/{p}")
                got = response.json().get("quantity") if response.status_code == 200 else response.status_code
                if got != want:
                    http_wrong.append(((w, p), got, want))
        report.stock_ok = not wrong and not http_wrong
        if wrong:
            report.problems.append(
                f"{len(wrong)} pair(s) with the wrong stock in PostgreSQL, e.g. {wrong[:2]}"
            )
        if http_wrong:
            report.problems.append(
                f"{len(http_wrong)} pair(s) read wrong over HTTP (stale cache?), e.g. {http_wrong[:2]}"
            )

    def check_reads(self, report: PhaseReport, name: str) -> None:
        assert self.reader
        samples = [s for s in list(self.reader.samples) if s.phase == name]
        report.reads = sum(s.what == "stock" for s in samples)
        pg_windows = [w for w in self.windows if w.kind == "postgres"]
        bad: list[str] = []
        for s in samples:
            in_pg = any(w.overlaps(s) for w in pg_windows)
            if s.status == 503 and s.retry_after and in_pg:
                report.reads_503 += s.what == "stock"
                continue
            if s.status != 200:
                bad.append(f"{s.what} {s.status or s.error} at +{s.began - self.t0:.1f}s")
        if bad:
            report.problems.append(
                f"{len(bad)} read(s) not 200 (nor 503 while PostgreSQL was down): {bad[:5]}"
            )
        ready = [s for s in samples if s.what == "ready"]
        for window in (w for w in self.windows if w.phase == name and w.kind in ("postgres", "redis")):
            inside = [s for s in ready if window.start <= s.began <= window.end]
            if not inside:
                report.problems.append(f"no /ready sample during the {window.kind} outage")
            elif window.kind == "postgres" and not any(s.status == 503 and s.retry_after for s in inside):
                report.problems.append("/ready never said 503 (with Retry-After) while PostgreSQL was down")
            elif window.kind == "redis" and not any(
                (s.body or {}).get("redis") == "unavailable" for s in inside
            ):
                report.problems.append("/ready never showed redis unavailable while Redis was stopped")

    def check_logs(self) -> list[str]:
        """No secret in anything the app or the pollers printed, faults included."""
        problems = []
        for log in sorted(self.stack.log_dir.glob("*.log")):
            if not (log.name.startswith(("app", "poller"))):
                continue
            text = log.read_text(errors="replace")
            for secret, what in (
                (self.stack.db_password, "database password"),
                (self.token, "webhook token"),
            ):
                if secret in text:
                    problems.append(f"{what} appears in {log.name}")
        return problems
