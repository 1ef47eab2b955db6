-- Issue 21, the owner's day: customers who called or walked in (no Telegram account), a client book
-- (the owner's notes, blocking a customer from booking), one shared walk-in customer, and the public
-- holiday calendar the owner may switch on (with the holidays they opened anyway).

ALTER TABLE customers
    ALTER COLUMN telegram_user_id DROP NOT NULL,
    ADD COLUMN notes text NOT NULL DEFAULT '' CHECK (length(notes) <= 2000),
    ADD COLUMN blocked boolean NOT NULL DEFAULT false,
    -- the one customer that anonymous walk-ins are booked for
    ADD COLUMN walk_in boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX customers_one_walk_in_idx ON customers (walk_in) WHERE walk_in;
-- a caller is found by their number
CREATE INDEX customers_phone_idx ON customers (phone) WHERE phone IS NOT NULL;

-- ISO 3166 country of the public holiday calendar (NULL: off), and the holidays opened anyway.
-- In the settings row, so the catalogue version moves with them and every cached copy follows.
ALTER TABLE settings
    ADD COLUMN holiday_country text CHECK (holiday_country ~ '^[A-Z]{2}$'),
    ADD COLUMN holidays_opened date[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(holidays_opened) <= 400);
