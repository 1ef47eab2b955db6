-- The outbox sets aside what it cannot deliver (issue 13): an event that fails for a reason a retry
-- cannot fix (it cannot be rendered, its payload breaks the contract) or that ran out of attempts is
-- marked failed with its error, never blocks the events behind it, and waits for an operator
-- (`botfleet events list --failed`, `botfleet events retry ID`, GET/POST /api/v1/events).
-- Delivery is recorded per recipient (sent_to), each right after its send, so a crash repeats at most
-- the one message in flight. Owners' own language lives in owners (chosen in the sales bot).
ALTER TABLE events
    ADD COLUMN failed_at timestamptz,
    ADD COLUMN sent_to bigint[] NOT NULL DEFAULT '{}';
DROP INDEX events_undelivered;
CREATE INDEX events_due ON events (next_attempt_at, id) WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX events_failed ON events (id) WHERE failed_at IS NOT NULL;

CREATE TABLE owners (
    telegram_id             bigint PRIMARY KEY,
    locale                  text NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);
