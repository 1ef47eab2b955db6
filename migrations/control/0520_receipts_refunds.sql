-- Issue 18: where 54-FZ receipts go, and refunds.

-- The buyer's receipt contact per tenant (e-mail or phone), given at purchase and changed by the owner
-- in "My bots"; every later payment (renewals, automatic charges) sends its receipt there.
CREATE TABLE receipt_contacts (
    tenant_id               bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    email                   text,
    phone                   text,   -- ITU-T E.164 digits, e.g. 79001234567
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (email IS NOT NULL OR phone IS NOT NULL)
);

-- A refund is a row with OUR idempotence key, committed before YooKassa is called (like payments);
-- the caller's key (a CLI --key or the API's Idempotency-Key) finds it again on a retry.
CREATE TABLE refunds (
    id                      uuid PRIMARY KEY,
    payment_id              uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
    amount                  numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency                char(3) NOT NULL,
    -- new: not yet accepted by YooKassa (its amount is reserved); pending: accepted, money on the way;
    -- succeeded: applied (applied_at set once); canceled: refused, nothing refunded
    status                  text NOT NULL DEFAULT 'new' CHECK (status IN
                                ('new', 'pending', 'succeeded', 'canceled')),
    request_key             text NOT NULL CHECK (length(request_key) BETWEEN 1 AND 128),
    idempotence_key         uuid NOT NULL UNIQUE,
    provider_refund_id      text UNIQUE,
    reason                  text NOT NULL DEFAULT '',
    requested_by            text NOT NULL,
    receipt                 jsonb,
    last_error              text,
    -- what the refund did to the subscription: none, or period_taken_back / subscription_ended
    effect                  text,
    applied_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    UNIQUE (payment_id, request_key)
);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);

-- Contacts given before this table existed live in their payments' metadata: keep the newest.
INSERT INTO receipt_contacts (tenant_id, email, phone)
SELECT DISTINCT ON (p.tenant_id) p.tenant_id, p.metadata #>> '{receipt,email}',
       p.metadata #>> '{receipt,phone}'
FROM payments p JOIN tenants t ON t.id = p.tenant_id
WHERE p.metadata #>> '{receipt,email}' IS NOT NULL OR p.metadata #>> '{receipt,phone}' IS NOT NULL
ORDER BY p.tenant_id, p.created_at DESC;
