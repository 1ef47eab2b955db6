-- The platform's own schema. Applied by the migration runner with search_path = control.

CREATE TABLE plans (
    code            text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_-]{1,31}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description     text NOT NULL DEFAULT '',
    price           numeric(12, 2) NOT NULL CHECK (price >= 0),
    currency        char(3) NOT NULL DEFAULT 'RUB' CHECK (currency ~ '^[A-Z]{3}$'),
    period_days     integer NOT NULL CHECK (period_days BETWEEN 1 AND 3660),
    max_staff       integer CHECK (max_staff IS NULL OR max_staff > 0),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug                    text NOT NULL CHECK (slug ~ '^[a-z][a-z0-9_]{2,30}$'),
    display_name            text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 128),
    owner_telegram_ids      bigint[] NOT NULL CHECK (cardinality(owner_telegram_ids) >= 1),
    -- what the tenant is now: new -> provisioning -> active; suspended; error; degraded; deleting; deleted
    status                  text NOT NULL DEFAULT 'new' CHECK (status IN
                                ('new', 'provisioning', 'active', 'suspended', 'error', 'degraded',
                                 'deleting', 'deleted')),
    status_reason           text,
    -- what the tenant should be; the deploy worker converges towards it
    desired_state           text NOT NULL DEFAULT 'stopped' CHECK (desired_state IN
                                ('running', 'stopped', 'deleted')),
    plan_code               text REFERENCES plans (code),
    locale                  text NOT NULL DEFAULT 'ru' CHECK (locale IN ('ru', 'en')),
    timezone                text NOT NULL DEFAULT 'Europe/Moscow',
    bot_token_enc           text NOT NULL,
    bot_token_fingerprint   text NOT NULL,
    bot_id                  bigint NOT NULL,
    bot_username            text,
    db_password_enc         text NOT NULL,
    redis_password_enc      text NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);
-- A deleted tenant frees its slug and its bot for a new purchase; live ones never share either.
CREATE UNIQUE INDEX tenants_slug_live ON tenants (slug) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX tenants_token_fingerprint_live ON tenants (bot_token_fingerprint)
    WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX tenants_bot_id_live ON tenants (bot_id) WHERE deleted_at IS NULL;
CREATE INDEX tenants_status ON tenants (status, id);
CREATE INDEX tenants_plan ON tenants (plan_code, id);
CREATE INDEX tenants_owner ON tenants USING gin (owner_telegram_ids);

CREATE TABLE subscriptions (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id               bigint NOT NULL UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
    plan_code               text NOT NULL REFERENCES plans (code),
    status                  text NOT NULL DEFAULT 'active' CHECK (status IN
                                ('active', 'grace', 'expired', 'cancelled')),
    current_period_start    timestamptz NOT NULL,
    current_period_end      timestamptz NOT NULL CHECK (current_period_end > current_period_start),
    auto_renew              boolean NOT NULL DEFAULT false,
    payment_method_id_enc   text,
    -- reminders already sent for this period, e.g. {"3d", "1d"}; reset when the period moves
    reminders_sent          text[] NOT NULL DEFAULT '{}',
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_period_end ON subscriptions (current_period_end);

CREATE TABLE payments (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id               bigint REFERENCES tenants (id) ON DELETE SET NULL,
    plan_code               text NOT NULL REFERENCES plans (code),
    amount                  numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency                char(3) NOT NULL,
    status                  text NOT NULL DEFAULT 'new' CHECK (status IN
                                ('new', 'pending', 'waiting_for_capture', 'succeeded', 'canceled')),
    provider                text NOT NULL DEFAULT 'yookassa',
    -- OUR idempotence key, stored before the provider is called, so a retry never charges twice
    idempotence_key         uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    provider_payment_id     text UNIQUE,
    confirmation_url        text,
    description             text NOT NULL DEFAULT '',
    metadata                jsonb NOT NULL DEFAULT '{}',
    save_payment_method     boolean NOT NULL DEFAULT false,
    cancellation_reason     text,
    -- set once, in the transaction that extends the subscription: the replay guard
    applied_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    paid_at                 timestamptz
);
CREATE INDEX payments_tenant ON payments (tenant_id, created_at DESC);
CREATE INDEX payments_status ON payments (status, created_at DESC);

CREATE TABLE deployments (
    tenant_id               bigint PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    runtime                 text NOT NULL,
    status                  text NOT NULL DEFAULT 'pending' CHECK (status IN
                                ('pending', 'starting', 'running', 'stopped', 'failed', 'degraded',
                                 'removed')),
    image                   text,
    spec_hash               text,
    container_id            text,
    restart_count           integer NOT NULL DEFAULT 0,
    last_error              text,
    started_at              timestamptz,
    ready_at                timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind                    text NOT NULL CHECK (kind IN
                                ('provision', 'deprovision', 'suspend', 'resume', 'redeploy')),
    tenant_id               bigint REFERENCES tenants (id) ON DELETE CASCADE,
    payload                 jsonb NOT NULL DEFAULT '{}',
    status                  text NOT NULL DEFAULT 'queued' CHECK (status IN
                                ('queued', 'running', 'done', 'dead', 'cancelled')),
    attempts                integer NOT NULL DEFAULT 0,
    max_attempts            integer NOT NULL DEFAULT 8 CHECK (max_attempts >= 1),
    run_after               timestamptz NOT NULL DEFAULT now(),
    locked_by               text,
    locked_until            timestamptz,
    last_error              text,
    request_id              text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    finished_at             timestamptz
);
CREATE INDEX jobs_ready ON jobs (run_after, id) WHERE status = 'queued';
CREATE INDEX jobs_tenant ON jobs (tenant_id, id);
-- at most one job of a tenant runs at a time
CREATE UNIQUE INDEX jobs_one_running_per_tenant ON jobs (tenant_id) WHERE status = 'running';

-- The outbox of things to tell people (the sales bot delivers owner-facing events).
CREATE TABLE events (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id               bigint REFERENCES tenants (id) ON DELETE CASCADE,
    kind                    text NOT NULL,
    payload                 jsonb NOT NULL DEFAULT '{}',
    created_at              timestamptz NOT NULL DEFAULT now(),
    delivered_at            timestamptz
);
CREATE INDEX events_undelivered ON events (id) WHERE delivered_at IS NULL;

CREATE TABLE api_keys (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                    text NOT NULL DEFAULT '',
    -- SHA-256 of the key; the key itself is shown once, at creation
    key_hash                text NOT NULL UNIQUE,
    key_prefix              text NOT NULL,
    scopes                  text[] NOT NULL CHECK (scopes <@ ARRAY['admin', 'read', 'sales']::text[]
                                AND cardinality(scopes) >= 1),
    created_at              timestamptz NOT NULL DEFAULT now(),
    last_used_at            timestamptz,
    revoked_at              timestamptz
);

CREATE TABLE audit_log (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    actor                   text NOT NULL,
    action                  text NOT NULL,
    target                  text,
    details                 jsonb NOT NULL DEFAULT '{}',
    request_id              text,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_created ON audit_log (created_at DESC, id DESC);

-- Wake deploy workers as soon as a job is queued (LISTEN botfleet_jobs).
CREATE FUNCTION notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('botfleet_jobs', NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION notify_job();
