-- Issue 18: plan changes, payment history, honest auto-renewal.

-- An upgrade is paid at once: the price of the new plan less the unused value of the current
-- period (see fleet/billing/plan_changes.py).
ALTER TABLE payments DROP CONSTRAINT payments_purpose_check;
ALTER TABLE payments ADD CONSTRAINT payments_purpose_check
    CHECK (purpose IN ('purchase', 'renewal', 'auto_renewal', 'upgrade'));
-- The terms the payer agreed to before their card was saved for automatic charges (amount,
-- currency, period, plan, how to cancel, when): YooKassa requires this consent.
ALTER TABLE payments ADD COLUMN autopay_consent jsonb;

ALTER TABLE subscriptions
    -- a downgrade waits for the end of the paid period: the plan the next period runs on, from when
    ADD COLUMN scheduled_plan_code text REFERENCES plans (code),
    ADD COLUMN scheduled_plan_at timestamptz,
    -- the consent under which the saved card is charged (copied from the payment that saved it,
    -- or given again when the owner turns auto-renewal back on)
    ADD COLUMN autopay_consent jsonb,
    ADD CONSTRAINT subscriptions_schedule_complete
        CHECK ((scheduled_plan_code IS NULL) = (scheduled_plan_at IS NULL));
CREATE INDEX subscriptions_scheduled_plan ON subscriptions (scheduled_plan_at)
    WHERE scheduled_plan_code IS NOT NULL;
