-- Owner statistics (issue 20): "new or returning" asks, per customer seen in a range, whether they had a
-- booking before it; this index answers that from the index alone on a tenant with 100,000 bookings.
CREATE INDEX bookings_customer_starts_idx ON bookings (customer_id, starts_at)
    WHERE status <> 'cancelled';
