-- The booking core's SQL functions as they are now: the one place each is written. Applied to every
-- tenant schema after the numbered migrations, and again whenever this file changes (fleet/migrations.py,
-- repeatable migrations): edit a function here, in place. A numbered migration still creates what a
-- function needs (a table, a column, the booking_request type), drops a function no longer wanted, or
-- changes a signature (DROP the old one there first: CREATE OR REPLACE cannot change it).
--
-- Functions pin their search_path to the schema they were created in (SET search_path FROM CURRENT),
-- so they find this tenant's tables whoever calls them.


-- Any change of the settings row moves the version (unless the statement moved it itself).
CREATE OR REPLACE FUNCTION settings_bump_version() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.catalogue_version = OLD.catalogue_version THEN
        NEW.catalogue_version := OLD.catalogue_version + 1;
    END IF;
    RETURN NEW;
END
$$;

-- Any change of what decides availability (except bookings) moves the version.
CREATE OR REPLACE FUNCTION catalogue_changed() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE settings SET catalogue_version = catalogue_version + 1;
    RETURN NULL;
END
$$;

-- The advisory lock key that serialises writers of one staff member's bookings in this schema.
CREATE OR REPLACE FUNCTION staff_lock_key(p_staff_id bigint) RETURNS bigint
    LANGUAGE sql STABLE SET search_path FROM CURRENT
    RETURN hashtextextended(current_schema() || ':staff:' || p_staff_id, 0);

-- One row per request, in request order (ordinal is 1-based). Outcomes: ok (with the booking) |
-- no_customer | blocked (the owner blocked the customer) | limit | stale (validated against an older catalogue) | full (every seat of the
-- session is sold) | no_service | taken (the slot overlaps an active booking) | duplicate (the
-- customer's idempotency key names a booking already). Each statement takes a fresh snapshot, so what
-- is read after the locks sees every transaction that held them before.
--
-- p_deposits (issue 19, migration 0020) holds one amount per request (missing or 0: none): with a
-- payment provider set up, such a booking is written pending, awaiting payment, its seat held until
-- now + payment_settings.hold_minutes; without one the amount is ignored and the booking is as ever.
-- They travel beside the requests so bots of an older image keep calling the two-argument form.
CREATE OR REPLACE FUNCTION book_slots(
    p_requests booking_request[], p_now timestamptz, p_deposits numeric[]
)
    RETURNS TABLE (ordinal integer, outcome text, booking bookings)
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    v_pay_on boolean;
    v_hold_until timestamptz;
    v_deposit numeric;
    v_status text;
    v_key bigint;
    v_locked bigint[];
    v_blocked bigint[];
    v_version bigint;
    r booking_request;
    v_outcome text;
    v_seat integer;
    v_row bookings;
    v_constraint text;
BEGIN
    -- One writer per staff member at a time, until commit: a request never waits on another's
    -- uncommitted overlapping row (two such waits can form a cycle that PostgreSQL breaks only after
    -- deadlock_timeout), and the seats of a session are handed out one at a time. Then one
    -- customer's bookings queue (each limit count below is exact under concurrency). Both in one
    -- global order: lock keys ascending, then customer ids ascending.
    FOR v_key IN SELECT DISTINCT hashtextextended(current_schema() || ':staff:' || x.staff_id, 0)
                 FROM unnest(p_requests) AS x ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(v_key);
    END LOOP;
    -- (ORDER BY comes before the row locks, so they are taken in id order)
    SELECT coalesce(array_agg(c.id), '{}'), coalesce(array_agg(c.id) FILTER (WHERE c.blocked), '{}'),
           (SELECT s.catalogue_version FROM settings s)
    INTO v_locked, v_blocked, v_version
    FROM (SELECT id, blocked FROM customers
          WHERE id = ANY (ARRAY(SELECT x.customer_id FROM unnest(p_requests) AS x
                                WHERE x.active_limit IS NOT NULL))
          ORDER BY id FOR NO KEY UPDATE) AS c;

    SELECT p.provider_token IS NOT NULL, p_now + make_interval(mins => p.hold_minutes)
    INTO v_pay_on, v_hold_until FROM payment_settings p;

    FOR i IN 1 .. coalesce(cardinality(p_requests), 0) LOOP
        r := p_requests[i];
        v_row := NULL;
        v_deposit := CASE WHEN coalesce(v_pay_on, false) AND coalesce(p_deposits[i], 0) > 0
                          THEN p_deposits[i] ELSE 0 END;
        v_status := CASE WHEN v_deposit > 0 THEN 'pending' ELSE r.status END;
        BEGIN  -- a subtransaction: this request's failure undoes only its own writes
            IF r.active_limit IS NOT NULL AND NOT r.customer_id = ANY (v_locked) THEN
                v_outcome := 'no_customer';
            ELSIF r.active_limit IS NOT NULL AND r.customer_id = ANY (v_blocked) THEN
                -- the owner blocked this customer from booking (an owner overriding limits may)
                v_outcome := 'blocked';
            ELSIF r.active_limit IS NOT NULL AND (
                    SELECT count(*) FROM (
                        SELECT 1 FROM bookings b
                        WHERE b.customer_id = r.customer_id AND b.status IN ('pending', 'confirmed')
                          AND b.ends_at > p_now
                        LIMIT r.active_limit) AS active) >= r.active_limit THEN
                v_outcome := 'limit';
            ELSIF r.catalogue_version IS NOT NULL AND r.catalogue_version <> v_version THEN
                v_outcome := 'stale';
            ELSIF r.capacity = 1 AND EXISTS (
                    SELECT 1 FROM bookings b
                    WHERE b.staff_id = r.staff_id AND b.status IN ('pending', 'confirmed')
                      AND b.occupied && tstzrange(r.occupied_from, r.occupied_until)) THEN
                -- what the constraints would refuse, found without raising (cheaper for a loser)
                v_outcome := 'taken';
            ELSE
                v_seat := 1;
                IF r.capacity > 1 THEN
                    SELECT min(s) INTO v_seat FROM generate_series(1, r.capacity) AS s
                    WHERE s NOT IN (SELECT b.seat FROM bookings b
                                    WHERE b.staff_id = r.staff_id AND b.service_id = r.service_id
                                      AND b.starts_at = r.starts_at
                                      AND b.status IN ('pending', 'confirmed'));
                END IF;
                IF v_seat IS NULL THEN
                    v_outcome := 'full';
                ELSE
                    -- the booking (with the reminders still ahead armed on it), its history entry
                    -- and the customer's fulfilled wish on the waitlist, in one statement
                    WITH booked AS (
                        INSERT INTO bookings (customer_id, service_id, staff_id, starts_at, ends_at,
                                              occupied, seat, status, price, currency, comment,
                                              created_at, updated_at, reminder_offsets,
                                              first_reminder_at, idempotency_key, deposit,
                                              payment, hold_until, notice_armed)
                        SELECT r.customer_id, r.service_id, r.staff_id, r.starts_at, r.ends_at,
                               tstzrange(r.occupied_from, r.occupied_until), v_seat, v_status,
                               sv.price, sv.currency, r.comment, p_now, p_now,
                               array(SELECT o FROM unnest(r.reminder_offsets) AS o
                                     WHERE r.starts_at - make_interval(mins => o) > p_now),
                               r.starts_at - make_interval(mins => (
                                   SELECT max(o) FROM unnest(r.reminder_offsets) AS o
                                   WHERE r.starts_at - make_interval(mins => o) > p_now)),
                               r.idempotency_key, v_deposit,
                               CASE WHEN v_deposit > 0 THEN 'awaiting' ELSE 'none' END,
                               CASE WHEN v_deposit > 0 THEN v_hold_until END,
                               -- the new-booking notices, owed from this commit on (migration 0070)
                               -- for a booking a person made in a chat (the bot names them); one
                               -- awaiting payment arms them when it is paid
                               CASE WHEN v_deposit > 0 OR r.actor_id IS NULL THEN NULL ELSE true END
                        FROM services sv WHERE sv.id = r.service_id
                        RETURNING *
                    ), history AS (
                        INSERT INTO booking_history (booking_id, at, actor, actor_id, to_status,
                                                     to_starts_at)
                        SELECT b.id, p_now, r.actor, r.actor_id, b.status, b.starts_at FROM booked b
                    ), waitlisted AS (
                        UPDATE waitlist SET status = 'booked', updated_at = p_now
                        WHERE customer_id = r.customer_id AND service_id = r.service_id
                          AND day = r.local_day AND status = 'waiting'
                          AND EXISTS (SELECT 1 FROM booked)
                    )
                    SELECT * INTO v_row FROM booked;
                    v_outcome := CASE WHEN v_row.id IS NULL THEN 'no_service' ELSE 'ok' END;
                END IF;
            END IF;
        EXCEPTION WHEN exclusion_violation OR unique_violation THEN
            GET STACKED DIAGNOSTICS v_constraint = CONSTRAINT_NAME;
            v_row := NULL;
            v_outcome := CASE WHEN v_constraint = 'bookings_idempotency_key_idx' THEN 'duplicate'
                              WHEN v_constraint IN ('bookings_one_session', 'bookings_one_seat_idx')
                                  THEN 'taken'
                         END;
            IF v_outcome IS NULL THEN
                RAISE;
            END IF;
        END;
        ordinal := i;
        outcome := v_outcome;
        booking := v_row;
        RETURN NEXT;
    END LOOP;
END
$$;

-- The two-argument form of 0004 (bots of an older image): no deposits.
CREATE OR REPLACE FUNCTION book_slots(p_requests booking_request[], p_now timestamptz)
    RETURNS TABLE (ordinal integer, outcome text, booking bookings)
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    RETURN QUERY SELECT * FROM book_slots(p_requests, p_now, '{}'::numeric[]);
END
$$;

-- The single-request form of 0002/0003 (same signature, outcomes and errors), now a batch of one.
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
    v_result record;
BEGIN
    SELECT b.outcome, b.booking INTO v_result FROM book_slots(ARRAY[ROW(
        p_customer_id, p_service_id, p_staff_id, p_starts_at, p_ends_at, p_occupied_from,
        p_occupied_until, p_status, p_comment, p_limit, p_actor, p_actor_id, p_offsets,
        p_idempotency_key, p_local_day, p_catalogue_version, p_capacity)::booking_request], p_now) AS b;
    outcome := v_result.outcome;
    booking := v_result.booking;
    -- the single form raised where the batch answers
    IF outcome = 'taken' THEN
        RAISE EXCEPTION 'the slot overlaps an active booking'
            USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'bookings_one_session';
    ELSIF outcome = 'duplicate' THEN
        RAISE EXCEPTION 'the idempotency key names a booking already'
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'bookings_idempotency_key_idx';
    END IF;
    RETURN NEXT;
END
$$;

-- Reviews (issue 20, migration 0040): a booking that becomes "done" gets its one review request, due
-- at the later of the moment it was marked (updated_at, the bot's clock) and the booking's end.
CREATE OR REPLACE FUNCTION review_request_on_done() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO review_requests (booking_id, due_at)
    VALUES (NEW.id, greatest(NEW.updated_at, NEW.ends_at))
    ON CONFLICT (booking_id) DO NOTHING;
    RETURN NULL;
END
$$;
