-- Durable new-booking notices (the "nothing fails silently" fix of the checkout). The owners' (and the
-- booked staff member's) "new booking" notice used to be sent by the handler after it read the booking
-- back; a database refusal between the commit and that read lost it. Now it is armed on the booking
-- row in the transaction that writes it (book_slots, or the payment that confirms a held booking) and
-- delivered by the bot's background loop, like reminders (migration 0003: a flag on the row costs far
-- less than a row of its own).
--
-- bookings.notice_armed: true while the booking's notices are owed and not yet handed out (NULL
-- otherwise, and for every booking made before this migration: nobody is told of those again).
-- The background loop takes armed bookings (FOR NO KEY UPDATE SKIP LOCKED), writes one
-- booking_notices row per recipient and disarms them, in one statement; each row then moves
--   pending (claimable once not_before has come and no lease holds it)
--     -> sending (written just before the one Telegram call)
--     -> sent | failed (set aside with its error) | skipped (the customer saw it already)
-- and back to pending with a later not_before after a passing fault. A row found 'sending' with its
-- lease run out belonged to a sender that died during the call: it may have been delivered, so it is
-- set aside ('failed', interrupted) rather than sent twice; a row claimed but never sent is claimed
-- again. The primary key makes a notice one row, however many loops hand it out.
--
-- Applied to every tenant schema: a nullable column without a default (catalog only), a new table,
-- and one partial index that reads the tenant's bookings once.

ALTER TABLE bookings ADD COLUMN notice_armed boolean;
CREATE INDEX bookings_notice_armed_idx ON bookings (id) WHERE notice_armed;

CREATE TABLE booking_notices (
    booking_id      bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    -- new_booking: owners and the booked staff member; booked: the customer's own confirmation,
    -- owed only if the checkout could not show it (the bot marks the ones it showed, in Redis)
    kind            text NOT NULL CHECK (kind IN ('new_booking', 'booked')),
    chat_id         bigint NOT NULL,
    role            text NOT NULL CHECK (role IN ('owner', 'staff', 'customer')),
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        smallint NOT NULL DEFAULT 0,
    not_before      timestamptz NOT NULL,
    claim_token     text,
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL,
    settled_at      timestamptz,
    error           text CHECK (length(error) <= 500),
    PRIMARY KEY (booking_id, kind, chat_id)
);
CREATE INDEX booking_notices_open_idx ON booking_notices (not_before)
    WHERE state IN ('pending', 'sending');
