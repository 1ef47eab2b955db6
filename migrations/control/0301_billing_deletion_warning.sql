-- When the owner was warned that a suspended tenant's data will be deleted: deletion waits for the
-- warning's lead time, even if the lifecycle runner was down when the warning fell due.
ALTER TABLE subscriptions ADD COLUMN deletion_warned_at timestamptz;
