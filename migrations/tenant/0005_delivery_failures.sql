-- Poison isolation for the bot's unsolicited messages (issue 13). A reminder, a "did they come?" card
-- or a waitlist notice that fails for a reason a retry cannot fix (a text that cannot be rendered,
-- Telegram 400 "chat not found", a customer who blocked the bot) is set aside with its error instead
-- of being retried every tick forever or stopping the items behind it; one that fails for a passing
-- reason (timeout, 5xx, 429) is retried later with a growing delay.
--
-- Applied to every tenant schema, so only cheap statements: nullable columns without defaults or
-- constraints (catalog-only changes; errors are cut to 500 characters by the code that writes them)
-- and CHECK constraints swapped NOT VALID (no table scan; new rows are still checked, and every
-- existing row already satisfies the wider check).

-- Reminders: 'failed' is final; claimed_until doubles as "not before" for a transient retry (release
-- pushes it into the future instead of clearing it).
ALTER TABLE reminders
    DROP CONSTRAINT reminders_status_check,
    ADD CONSTRAINT reminders_status_check
        CHECK (status IN ('pending', 'sent', 'cancelled', 'failed')) NOT VALID,
    ADD COLUMN last_error text,
    ADD COLUMN failed_at timestamptz;

-- Completion cards: a card Telegram could not take for a passing reason is put back
-- (completion_prompted_at cleared) and not claimed again before completion_retry_at; one that can never
-- be delivered keeps completion_prompted_at and records its error (the booking stays on the owner's
-- to-do list, where they can still mark it).
ALTER TABLE bookings
    ADD COLUMN completion_attempts smallint,
    ADD COLUMN completion_retry_at timestamptz,
    ADD COLUMN completion_error text;

-- Waitlist: a wish whose customer cannot be told (blocked the bot, chat gone) stops being offered.
ALTER TABLE waitlist
    DROP CONSTRAINT waitlist_status_check,
    ADD CONSTRAINT waitlist_status_check
        CHECK (status IN ('waiting', 'booked', 'left', 'failed')) NOT VALID,
    ADD COLUMN last_error text,
    ADD COLUMN failed_at timestamptz;
