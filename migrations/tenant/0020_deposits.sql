-- Deposits and prepayment through Telegram Payments, and a cancellation policy that is applied
-- (issue 19). Cheap statements only (constant defaults and nullable columns are catalog-only changes).

-- The payment set-up: one row. The provider token is the one BotFather gives when the owner connects a
-- provider (YooKassa, ...); it is stored encrypted (``v1:<key id>:<fernet token>``, kit/secrets.py)
-- with a key derived from the bot's own token, which the database never holds.
CREATE TABLE payment_settings (
    id                      boolean PRIMARY KEY DEFAULT true CHECK (id),
    provider_token          text CHECK (length(provider_token) <= 2000),
    -- how long a booking awaiting payment holds its seat
    hold_minutes            integer NOT NULL DEFAULT 15 CHECK (hold_minutes BETWEEN 2 AND 1440),
    -- 54-FZ receipts: provider_data carries the receipt (YooKassa's format) when on
    receipts                boolean NOT NULL DEFAULT false,
    receipt_vat_code        smallint NOT NULL DEFAULT 1 CHECK (receipt_vat_code BETWEEN 1 AND 12),
    -- the cancellation policy: free until this many hours before the start; later the business keeps
    -- late_keep_percent of what was paid; a no-show keeps it all
    free_cancel_hours       integer NOT NULL DEFAULT 24 CHECK (free_cancel_hours BETWEEN 0 AND 720),
    late_keep_percent       integer NOT NULL DEFAULT 100 CHECK (late_keep_percent BETWEEN 0 AND 100),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
INSERT INTO payment_settings DEFAULT VALUES;

-- Per service: no deposit, a fixed amount, a percentage of the price, or the full price.
ALTER TABLE services
    ADD COLUMN deposit_kind text NOT NULL DEFAULT 'none'
        CHECK (deposit_kind IN ('none', 'fixed', 'percent', 'full')),
    ADD COLUMN deposit_value numeric(12, 2) NOT NULL DEFAULT 0 CHECK (deposit_value >= 0);

-- A booking's money. payment: none (nothing asked) | awaiting (the seat is held until hold_until) |
-- paid | released (never paid: the hold ran out or the booking was cancelled first). refund_due is
-- what the owner owes back (recorded when the policy says so; Telegram cannot refund), refunded_at
-- when the owner said it was done. release_pending: a freed time the waitlist has not yet been told of.
ALTER TABLE bookings
    ADD COLUMN deposit numeric(12, 2) NOT NULL DEFAULT 0,
    ADD COLUMN payment text NOT NULL DEFAULT 'none'
        CHECK (payment IN ('none', 'awaiting', 'paid', 'released')),
    ADD COLUMN hold_until timestamptz,
    ADD COLUMN paid_amount numeric(12, 2),
    ADD COLUMN paid_at timestamptz,
    ADD COLUMN telegram_charge_id text,
    ADD COLUMN provider_charge_id text,
    ADD COLUMN refund_due numeric(12, 2),
    ADD COLUMN refund_reason text,
    ADD COLUMN refunded_at timestamptz,
    ADD COLUMN release_pending boolean NOT NULL DEFAULT false;
CREATE INDEX bookings_hold_idx ON bookings (hold_until) WHERE payment = 'awaiting';
CREATE INDEX bookings_release_idx ON bookings (id) WHERE release_pending;
-- one payment is applied once, whatever Telegram repeats
CREATE UNIQUE INDEX bookings_charge_idx ON bookings (telegram_charge_id)
    WHERE telegram_charge_id IS NOT NULL;
