-- The subscription lifecycle sets aside a subscription whose step fails for a reason a retry cannot fix
-- (issue 13): it is marked with the error, skipped by every later run (so it never holds up the others),
-- and waits for an operator (`botfleet billing failures`, `botfleet billing retry SUBSCRIPTION_ID`).
ALTER TABLE subscriptions
    ADD COLUMN lifecycle_failed_at timestamptz,
    ADD COLUMN lifecycle_error text;
CREATE INDEX subscriptions_lifecycle_failed ON subscriptions (id) WHERE lifecycle_failed_at IS NOT NULL;
