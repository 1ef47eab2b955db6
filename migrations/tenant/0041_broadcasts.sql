-- Mailings (issue 20, item 2). The owner's mailing is a broadcasts row plus one row per recipient,
-- both written in the transaction that confirms it (the audience is fixed then). Each recipient row
-- moves 'pending' -> 'sending' (claimed by one sender with its token) -> 'sent' | 'blocked' |
-- 'failed' | 'skipped' (opted out since); a row found 'sending' by a sender that took over from a dead
-- one is set aside as 'failed' (interrupted: it may have been delivered), so nobody gets a mailing
-- twice. One sender per tenant at a time holds the lease on the mailing being sent (lease_token,
-- lease_until), which keeps the bot within Telegram's per-bot rate whatever the number of processes.

CREATE TABLE mailing_opt_outs (
    customer_id     bigint PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL
);

CREATE TABLE broadcasts (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    draft_key           text NOT NULL UNIQUE CHECK (length(draft_key) BETWEEN 1 AND 64),
    text                text NOT NULL DEFAULT '' CHECK (length(text) <= 16000),
    photo_file_id       text CHECK (length(photo_file_id) <= 500),
    audience            text NOT NULL CHECK (audience IN ('all', 'recent', 'lapsed', 'service')),
    audience_days       integer CHECK (audience_days BETWEEN 1 AND 3650),
    audience_service_id bigint REFERENCES services (id) ON DELETE SET NULL,
    status              text NOT NULL DEFAULT 'sending'
                        CHECK (status IN ('sending', 'done', 'cancelled')),
    recipients          integer NOT NULL CHECK (recipients >= 0),
    created_by          bigint NOT NULL,
    progress_chat_id    bigint,
    progress_message_id bigint,
    lease_token         text,
    lease_until         timestamptz,
    created_at          timestamptz NOT NULL,
    finished_at         timestamptz,
    reported_at         timestamptz,
    CHECK (text <> '' OR photo_file_id IS NOT NULL)
);
CREATE INDEX broadcasts_sending_idx ON broadcasts (id) WHERE status = 'sending';

CREATE TABLE broadcast_recipients (
    broadcast_id    bigint NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    customer_id     bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    chat_id         bigint NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'blocked', 'failed', 'skipped')),
    attempts        smallint NOT NULL DEFAULT 0,
    not_before      timestamptz,
    claim_token     text,
    settled_at      timestamptz,
    error           text CHECK (length(error) <= 500),
    PRIMARY KEY (broadcast_id, customer_id)
);
CREATE INDEX broadcast_recipients_open_idx ON broadcast_recipients (broadcast_id, customer_id)
    WHERE state IN ('pending', 'sending');
