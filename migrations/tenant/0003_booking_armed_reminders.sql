-- Reminders armed on the booking: a booking no longer writes one reminders row per offset. It keeps the
-- offsets still ahead when it was booked (or moved) in reminder_offsets, and a reminders row is written
-- only when a reminder falls due and a sender claims it. Measured, the two reminder rows (heap, three
-- index entries and a foreign-key check each) cost as much as the booking row itself.
--
-- A claim takes the due offsets off the booking and writes their rows in one statement (the booking row
-- locked FOR NO KEY UPDATE SKIP LOCKED), so a reminder is either armed or claimed, never both, and a
-- claimer that dies before commit leaves it armed. From there on nothing changed: the reminders row is
-- the one claim of one (booking, offset) — unique, leased, settled with mark_sent/release — so each
-- reminder is sent once and none is lost. Reminder rows written before this migration keep working.

ALTER TABLE bookings
    ADD COLUMN reminder_offsets integer[] NOT NULL DEFAULT '{}',
    -- when the earliest reminder armed at booking (or moving) time falls due (NULL: none); claimers
    -- look here
    ADD COLUMN first_reminder_at timestamptz;
CREATE INDEX bookings_first_reminder_idx ON bookings (first_reminder_at)
    WHERE status IN ('pending', 'confirmed') AND first_reminder_at IS NOT NULL;

-- The idempotency key is a column of the booking it names (unique per customer) instead of a row of
-- its own: one row, two foreign-key checks and two index entries fewer for each keyed booking (the bot
-- keys every booking). Existing keys move over; a purge now clears the
-- column (an hourly scan of the tenant's bookings, rather than an index entry for every booking).
ALTER TABLE bookings ADD COLUMN idempotency_key text CHECK (length(idempotency_key) BETWEEN 1 AND 200);
UPDATE bookings b SET idempotency_key = k.key FROM idempotency_keys k WHERE k.booking_id = b.id;
CREATE UNIQUE INDEX bookings_idempotency_key_idx ON bookings (customer_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
DROP TABLE idempotency_keys;

-- Same signature and outcomes as in 0002; reminders are armed on the row instead of inserted, the
-- idempotency key is a column, and the
-- staff lock key is computed in place (staff_lock_key() gives the same key; reschedule still uses it).
CREATE OR REPLACE FUNCTION book_slot(
    p_customer_id bigint,
    p_service_id bigint,
    p_staff_id bigint,
    p_starts_at timestamptz,
    p_ends_at timestamptz,
    p_occupied_from timestamptz,
    p_occupied_until timestamptz,
    p_status text,
    p_comment text,
    p_now timestamptz,
    p_limit integer,
    p_actor text,
    p_actor_id bigint,
    p_offsets integer[],
    p_idempotency_key text,
    p_local_day date,
    p_catalogue_version bigint,
    p_capacity integer
) RETURNS TABLE (outcome text, booking bookings)
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_seat integer := 1;
    v_armed integer[];
    v_row bookings;
BEGIN
    IF p_limit IS NOT NULL THEN
        -- one customer's bookings queue here, so the count below is exact under concurrency
        PERFORM 1 FROM customers WHERE id = p_customer_id FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'no_customer'::text, NULL::bookings;
            RETURN;
        END IF;
        IF (SELECT count(*) FROM bookings b
            WHERE b.customer_id = p_customer_id AND b.status IN ('pending', 'confirmed')
              AND b.ends_at > p_now) >= p_limit THEN
            RETURN QUERY SELECT 'limit'::text, NULL::bookings;
            RETURN;
        END IF;
    END IF;
    IF p_catalogue_version IS NOT NULL
       AND p_catalogue_version <> (SELECT s.catalogue_version FROM settings s) THEN
        RETURN QUERY SELECT 'stale'::text, NULL::bookings;
        RETURN;
    END IF;
    -- One writer per staff member at a time (until commit): see 0002. Same key as staff_lock_key().
    PERFORM pg_advisory_xact_lock(hashtextextended(current_schema() || ':staff:' || p_staff_id, 0));
    IF p_capacity > 1 THEN
        SELECT min(s) INTO v_seat FROM generate_series(1, p_capacity) AS s
        WHERE s NOT IN (SELECT b.seat FROM bookings b
                        WHERE b.staff_id = p_staff_id
                          AND b.session_key = booking_session_key(p_service_id, p_starts_at)
                          AND b.status IN ('pending', 'confirmed'));
        IF v_seat IS NULL THEN
            RETURN QUERY SELECT 'full'::text, NULL::bookings;
            RETURN;
        END IF;
    END IF;
    v_armed := array(SELECT o FROM unnest(p_offsets) AS o
                     WHERE p_starts_at - make_interval(mins => o) > p_now);
    INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, ends_at, occupied, seat,
                          status, price, currency, comment, created_at, updated_at,
                          reminder_offsets, first_reminder_at, idempotency_key)
    SELECT p_customer_id, p_service_id, p_staff_id, p_starts_at, p_ends_at,
           tstzrange(p_occupied_from, p_occupied_until), v_seat, p_status, sv.price, sv.currency,
           p_comment, p_now, p_now, v_armed,
           p_starts_at - make_interval(mins => (SELECT max(o) FROM unnest(v_armed) AS o)),
           p_idempotency_key
    FROM services sv WHERE sv.id = p_service_id
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        RETURN QUERY SELECT 'no_service'::text, NULL::bookings;
        RETURN;
    END IF;
    INSERT INTO booking_history (booking_id, at, actor, actor_id, to_status, to_starts_at)
    VALUES (v_row.id, p_now, p_actor, p_actor_id, p_status, p_starts_at);
    UPDATE waitlist SET status = 'booked', updated_at = p_now
    WHERE customer_id = p_customer_id AND service_id = p_service_id AND day = p_local_day
      AND status = 'waiting';
    RETURN QUERY SELECT 'ok'::text, v_row;
END
$$;
