-- Reminders that ask, and no-show memory (issue 19, items 3 and 4).
--
-- Applied to every tenant schema, so only cheap statements: nullable columns without defaults, and
-- columns of the one-row settings table. The index below reads the tenant's bookings once.

-- "I'll come" tapped under a reminder (NULL: the customer has not answered). Set once; a repeated tap
-- keeps the first time.
ALTER TABLE bookings ADD COLUMN customer_confirmed_at timestamptz;

-- The owner's choices:
-- release_unconfirmed_hours: a booking whose customer was reminded but did not answer "I'll come" is
--   cancelled this many hours before its start and its time offered to the waitlist (NULL: never).
-- no_show_action / no_show_threshold: what happens to a customer with at least this many bookings
--   marked no-show: 'off' (nothing), 'deposit' (a deposit is required, whatever the service), 'block'
--   (the customer cannot book; the owner still can for them).
ALTER TABLE settings
    ADD COLUMN release_unconfirmed_hours integer
        CHECK (release_unconfirmed_hours BETWEEN 1 AND 168),
    ADD COLUMN no_show_action text NOT NULL DEFAULT 'off'
        CHECK (no_show_action IN ('off', 'deposit', 'block')),
    ADD COLUMN no_show_threshold integer NOT NULL DEFAULT 2
        CHECK (no_show_threshold BETWEEN 1 AND 100);

-- A customer's no-shows are counted at every booking while a no-show rule is on and on every card.
CREATE INDEX bookings_customer_no_show_idx ON bookings (customer_id) WHERE status = 'no_show';
