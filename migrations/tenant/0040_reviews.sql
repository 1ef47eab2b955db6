-- Reviews (issue 20, item 1). A booking marked "came" (status done) gets one review request, written
-- by a trigger in the statement that marks it, so every path to "done" asks exactly once; a no-show
-- never does. The trigger's function is kept in repeatable/booking.sql (edit it there). The bot's review loop claims due requests one at a time
-- ('pending' -> 'sending' -> 'sent' | 'failed'), so two bot processes never ask twice; a request
-- found 'sending' after its claimer died is set aside as 'failed' (interrupted), never sent again.
--
-- New tables only (cheap on every schema); the settings of this feature and of mailings live in a
-- one-row table of their own instead of new columns on settings.

CREATE TABLE outreach_settings (
    id                  boolean PRIMARY KEY DEFAULT true CHECK (id),
    reviews_enabled     boolean NOT NULL DEFAULT true,
    -- ratings show to customers once a business (or a staff member) has this many visible reviews
    review_min_count    integer NOT NULL DEFAULT 3 CHECK (review_min_count BETWEEN 1 AND 1000),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outreach_settings DEFAULT VALUES;

CREATE TABLE review_requests (
    booking_id      bigint PRIMARY KEY REFERENCES bookings (id) ON DELETE CASCADE,
    due_at          timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    claim_token     text,
    claimed_at      timestamptz,
    settled_at      timestamptz,
    last_error      text CHECK (length(last_error) <= 500)
);
CREATE INDEX review_requests_due_idx ON review_requests (due_at) WHERE status = 'pending';
CREATE INDEX review_requests_sending_idx ON review_requests (claimed_at) WHERE status = 'sending';

-- One review per visit; the first rating wins (a second tap changes nothing).
CREATE TABLE reviews (
    booking_id      bigint PRIMARY KEY REFERENCES bookings (id) ON DELETE CASCADE,
    customer_id     bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    staff_id        bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    service_id      bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    stars           smallint NOT NULL CHECK (stars BETWEEN 1 AND 5),
    comment         text NOT NULL DEFAULT '' CHECK (length(comment) <= 1000),
    hidden          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX reviews_created_idx ON reviews (created_at DESC);

-- Visible reviews per staff member, kept by the statements that add or hide a review, so a welcome
-- screen reads a handful of rows instead of aggregating every review.
CREATE TABLE review_totals (
    staff_id    bigint PRIMARY KEY REFERENCES staff (id) ON DELETE CASCADE,
    reviews     integer NOT NULL DEFAULT 0 CHECK (reviews >= 0),
    stars       integer NOT NULL DEFAULT 0 CHECK (stars >= 0)
);

-- A booking that becomes "done" gets its one review request, due at the later of the moment it was
-- marked (updated_at, written with the bot's clock) and the booking's end.
CREATE FUNCTION review_request_on_done() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO review_requests (booking_id, due_at)
    VALUES (NEW.id, greatest(NEW.updated_at, NEW.ends_at))
    ON CONFLICT (booking_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER bookings_review_request AFTER UPDATE OF status ON bookings
    FOR EACH ROW WHEN (NEW.status = 'done' AND OLD.status IS DISTINCT FROM 'done')
    EXECUTE FUNCTION review_request_on_done();
