-- The booking fast path: a catalogue version for the bot's in-process catalogue cache, and book_slot(),
-- which takes a slot in ONE round trip (customer lock, limit count, seat choice, booking, history,
-- reminders, idempotency key and waitlist update in one transaction).
--
-- Functions pin their search_path to the schema they were created in (SET search_path FROM CURRENT),
-- so they find this tenant's tables whoever calls them.

ALTER TABLE settings ADD COLUMN catalogue_version bigint NOT NULL DEFAULT 1;

-- Any change of the settings row moves the version (unless the statement moved it itself).
CREATE FUNCTION settings_bump_version() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.catalogue_version = OLD.catalogue_version THEN
        NEW.catalogue_version := OLD.catalogue_version + 1;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER settings_version BEFORE UPDATE ON settings
    FOR EACH ROW EXECUTE FUNCTION settings_bump_version();

-- Any change of what decides availability (except bookings) moves the version.
CREATE FUNCTION catalogue_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE settings SET catalogue_version = catalogue_version + 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER services_changed AFTER INSERT OR UPDATE OR DELETE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed();
CREATE TRIGGER staff_changed AFTER INSERT OR UPDATE OR DELETE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed();
CREATE TRIGGER staff_services_changed AFTER INSERT OR UPDATE OR DELETE ON staff_services
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed();
CREATE TRIGGER working_hours_changed AFTER INSERT OR UPDATE OR DELETE ON working_hours
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed();
CREATE TRIGGER date_exceptions_changed AFTER INSERT OR UPDATE OR DELETE ON date_exceptions
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed();
CREATE TRIGGER blocked_periods_changed AFTER INSERT OR UPDATE OR DELETE ON blocked_periods
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_changed();

-- The advisory lock key that serialises writers of one staff member's bookings in this schema.
CREATE FUNCTION staff_lock_key(p_staff_id bigint) RETURNS bigint
    LANGUAGE sql STABLE SET search_path FROM CURRENT
    RETURN hashtextextended(current_schema() || ':staff:' || p_staff_id, 0);

-- Outcomes: ok | no_customer | limit | stale (the caller validated against an older catalogue) | full
-- (every seat of the session is sold) | no_service. Overlaps raise the exclusion violation.
-- p_limit NULL skips the customer lock and limit (owner bookings); p_catalogue_version NULL skips the
-- staleness check. Each statement below takes a fresh snapshot, so counts taken after a lock see every
-- transaction that held the lock before.
CREATE FUNCTION book_slot(
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
    -- One writer per staff member at a time (until commit). Without it, concurrent inserts of
    -- conflicting rows each wait on the others' uncommitted rows in the exclusion check: a deadlock
    -- cycle PostgreSQL breaks only after deadlock_timeout. With it, a loser finds the winner committed
    -- and fails at once; seats of a session are also handed out one at a time.
    PERFORM pg_advisory_xact_lock(staff_lock_key(p_staff_id));
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
    INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, ends_at, occupied, seat,
                          status, price, currency, comment, created_at, updated_at)
    SELECT p_customer_id, p_service_id, p_staff_id, p_starts_at, p_ends_at,
           tstzrange(p_occupied_from, p_occupied_until), v_seat, p_status, sv.price, sv.currency,
           p_comment, p_now, p_now
    FROM services sv WHERE sv.id = p_service_id
    RETURNING * INTO v_row;
    IF v_row.id IS NULL THEN
        RETURN QUERY SELECT 'no_service'::text, NULL::bookings;
        RETURN;
    END IF;
    INSERT INTO booking_history (booking_id, at, actor, actor_id, to_status, to_starts_at)
    VALUES (v_row.id, p_now, p_actor, p_actor_id, p_status, p_starts_at);
    INSERT INTO reminders (booking_id, offset_minutes, due_at)
    SELECT v_row.id, o, p_starts_at - make_interval(mins => o)
    FROM unnest(p_offsets) AS o
    WHERE p_starts_at - make_interval(mins => o) > p_now;
    IF p_idempotency_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (customer_id, key, booking_id, created_at)
        VALUES (p_customer_id, p_idempotency_key, v_row.id, p_now);
    END IF;
    UPDATE waitlist SET status = 'booked', updated_at = p_now
    WHERE customer_id = p_customer_id AND service_id = p_service_id AND day = p_local_day
      AND status = 'waiting';
    RETURN QUERY SELECT 'ok'::text, v_row;
END
$$;
