-- Billing: why a payment exists, automatic renewals, the subscription lifecycle, outbox retries.

ALTER TABLE payments
    -- purchase: the first payment of a new tenant; renewal: the owner paid again;
    -- auto_renewal: we charged the saved payment method
    ADD COLUMN purpose text NOT NULL DEFAULT 'purchase'
        CHECK (purpose IN ('purchase', 'renewal', 'auto_renewal')),
    -- the Telegram user who started the payment (told about its outcome)
    ADD COLUMN payer_telegram_id bigint,
    -- for auto_renewal: the period end this charge renews (one charge per period)
    ADD COLUMN renews_period_end timestamptz,
    -- why the provider call failed, for operators (never shown to buyers verbatim)
    ADD COLUMN last_error text;

-- However many lifecycle runners race, a subscription period is charged automatically at most once.
CREATE UNIQUE INDEX payments_one_auto_renewal_per_period ON payments (tenant_id, renews_period_end)
    WHERE purpose = 'auto_renewal';
-- Open checkouts of a tenant, reused when the buyer presses "pay" again.
CREATE INDEX payments_open ON payments (tenant_id, plan_code, created_at DESC)
    WHERE status IN ('new', 'pending');

ALTER TABLE subscriptions
    -- when the tenant was suspended for non-payment: retention counts from here
    ADD COLUMN suspended_at timestamptz,
    -- "Bank card *4477": shown to the owner next to the auto-renewal switch
    ADD COLUMN payment_method_title text;
CREATE INDEX subscriptions_status_end ON subscriptions (status, current_period_end);

ALTER TABLE events
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_error text;
