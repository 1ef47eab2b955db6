-- The booking core's tables, applied to every tenant schema (search_path = <tenant schema>, public).
-- The tenant role gets SELECT/INSERT/UPDATE/DELETE on these tables and nothing else: no DDL at runtime.
-- btree_gist (installed in public) is needed only here, to build the exclusion constraints.

-- One row: the business profile and the booking rules.
CREATE TABLE settings (
    id                          boolean PRIMARY KEY DEFAULT true CHECK (id),
    business_name               text NOT NULL DEFAULT '' CHECK (length(business_name) <= 200),
    description                 text NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    address                     text NOT NULL DEFAULT '' CHECK (length(address) <= 500),
    phone                       text NOT NULL DEFAULT '' CHECK (length(phone) <= 20),
    map_url                     text NOT NULL DEFAULT '' CHECK (length(map_url) <= 1000),
    welcome_text                text NOT NULL DEFAULT '' CHECK (length(welcome_text) <= 4000),
    time_zone                   text NOT NULL DEFAULT 'Europe/Moscow',
    default_locale              text NOT NULL DEFAULT 'ru' CHECK (default_locale ~ '^[a-z]{2}$'),
    currency                    char(3) NOT NULL DEFAULT 'RUB' CHECK (currency ~ '^[A-Z]{3}$'),
    slot_step_minutes           integer NOT NULL DEFAULT 30 CHECK (slot_step_minutes BETWEEN 5 AND 720),
    buffer_before_minutes       integer NOT NULL DEFAULT 0 CHECK (buffer_before_minutes BETWEEN 0 AND 720),
    buffer_after_minutes        integer NOT NULL DEFAULT 0 CHECK (buffer_after_minutes BETWEEN 0 AND 720),
    min_notice_minutes          integer NOT NULL DEFAULT 60 CHECK (min_notice_minutes BETWEEN 0 AND 43200),
    horizon_days                integer NOT NULL DEFAULT 30 CHECK (horizon_days BETWEEN 1 AND 366),
    max_active_per_customer     integer NOT NULL DEFAULT 3 CHECK (max_active_per_customer BETWEEN 1 AND 100),
    cancel_notice_minutes       integer NOT NULL DEFAULT 120 CHECK (cancel_notice_minutes BETWEEN 0 AND 43200),
    reschedule_notice_minutes   integer NOT NULL DEFAULT 120
                                CHECK (reschedule_notice_minutes BETWEEN 0 AND 43200),
    confirmation_required       boolean NOT NULL DEFAULT false,
    reminder_offsets_minutes    integer[] NOT NULL DEFAULT '{1440,120}'
                                CHECK (cardinality(reminder_offsets_minutes) <= 5
                                       AND 0 < ALL (reminder_offsets_minutes)),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO settings DEFAULT VALUES;

CREATE TABLE services (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    duration_minutes    integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 1440),
    price               numeric(12, 2) NOT NULL DEFAULT 0 CHECK (price >= 0),
    currency            char(3) NOT NULL DEFAULT 'RUB' CHECK (currency ~ '^[A-Z]{3}$'),
    capacity            integer NOT NULL DEFAULT 1 CHECK (capacity BETWEEN 1 AND 1000),
    active              boolean NOT NULL DEFAULT true,
    sort_order          integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A person or a resource (chair, room) that one booking occupies.
CREATE TABLE staff (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description         text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    telegram_user_id    bigint,
    active              boolean NOT NULL DEFAULT true,
    sort_order          integer NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE staff_services (
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    service_id  bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    PRIMARY KEY (staff_id, service_id)
);
CREATE INDEX staff_services_service_idx ON staff_services (service_id);

-- Weekly hours in the tenant's local wall time, as minutes of the day (end 1440 = midnight), so a day
-- may hold several intervals (a break is the gap between two).
CREATE TABLE working_hours (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id        bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    weekday         smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),  -- 0 = Monday
    start_minute    integer NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute      integer NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    CHECK (start_minute < end_minute),
    CONSTRAINT working_hours_no_overlap EXCLUDE USING gist (staff_id WITH =, weekday WITH =,
                        int4range(start_minute, end_minute) WITH &&)
);

-- A date whose hours replace the weekly ones: rows without minutes mean a day off, rows with minutes are
-- the special hours. staff_id NULL applies to every staff member without an exception of their own.
CREATE TABLE date_exceptions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id        bigint REFERENCES staff (id) ON DELETE CASCADE,
    day             date NOT NULL,
    start_minute    integer CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute      integer CHECK (end_minute BETWEEN 1 AND 1440),
    note            text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    CHECK ((start_minute IS NULL) = (end_minute IS NULL)),
    CHECK (start_minute IS NULL OR start_minute < end_minute)
);
CREATE INDEX date_exceptions_day_idx ON date_exceptions (day, staff_id);

-- Periods the owner closed by hand (staff_id NULL: the whole business).
CREATE TABLE blocked_periods (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id    bigint REFERENCES staff (id) ON DELETE CASCADE,
    period      tstzrange NOT NULL CHECK (NOT isempty(period) AND NOT lower_inf(period)
                                          AND NOT upper_inf(period)),
    reason      text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blocked_periods_period_idx ON blocked_periods USING gist (period);

CREATE TABLE customers (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    telegram_user_id    bigint NOT NULL UNIQUE,
    name                text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    phone               text CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),  -- E.164
    locale              text CHECK (locale ~ '^[a-z]{2}$'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A session is one service at one start time on one staff member: a capacity > 1 service sells several
-- seats of one session. The key is immutable (epoch seconds do not depend on the time zone).
CREATE FUNCTION booking_session_key(service_id bigint, starts_at timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN service_id::text || '@' || extract(epoch FROM starts_at)::bigint::text;

CREATE TABLE bookings (
    id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id             bigint NOT NULL REFERENCES customers (id),
    service_id              bigint NOT NULL REFERENCES services (id),
    staff_id                bigint NOT NULL REFERENCES staff (id),
    starts_at               timestamptz NOT NULL,
    ends_at                 timestamptz NOT NULL,
    -- [start - buffer before, end + buffer after), fixed when booked so later rule edits do not move it
    occupied                tstzrange NOT NULL,
    seat                    integer NOT NULL DEFAULT 1 CHECK (seat >= 1),
    session_key             text GENERATED ALWAYS AS (booking_session_key(service_id, starts_at)) STORED,
    status                  text NOT NULL CHECK (status IN
                                ('pending', 'confirmed', 'done', 'no_show', 'cancelled')),
    price                   numeric(12, 2) NOT NULL DEFAULT 0,
    currency                char(3) NOT NULL DEFAULT 'RUB',
    comment                 text NOT NULL DEFAULT '' CHECK (length(comment) <= 1000),
    cancel_reason           text CHECK (length(cancel_reason) <= 500),
    cancelled_by            text CHECK (cancelled_by IN ('customer', 'owner', 'system')),
    completion_prompted_at  timestamptz,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    CHECK (starts_at < ends_at),
    CHECK (lower(occupied) <= starts_at AND upper(occupied) >= ends_at),
    -- The guarantees below hold for active bookings, whatever the application does:
    -- one seat of one staff member is never sold twice for overlapping times ...
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist
        (staff_id WITH =, seat WITH =, occupied WITH &&)
        WHERE (status IN ('pending', 'confirmed')),
    -- ... and overlapping bookings of one staff member are seats of one session.
    CONSTRAINT bookings_one_session EXCLUDE USING gist
        (staff_id WITH =, session_key WITH <>, occupied WITH &&)
        WHERE (status IN ('pending', 'confirmed'))
);
CREATE INDEX bookings_customer_active_idx ON bookings (customer_id, ends_at)
    WHERE status IN ('pending', 'confirmed');
CREATE INDEX bookings_starts_idx ON bookings (starts_at);
CREATE INDEX bookings_completion_idx ON bookings (ends_at)
    WHERE status = 'confirmed' AND completion_prompted_at IS NULL;

CREATE TABLE booking_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id      bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    at              timestamptz NOT NULL,
    actor           text NOT NULL CHECK (actor IN ('customer', 'owner', 'system')),
    actor_id        bigint,  -- a Telegram user id when a person acted
    from_status     text,
    to_status       text NOT NULL,
    from_starts_at  timestamptz,
    to_starts_at    timestamptz,
    reason          text CHECK (length(reason) <= 500)
);
CREATE INDEX booking_history_booking_idx ON booking_history (booking_id, id);

-- A repeated booking request (a double tap, a retried update) carries the same key and gets the same
-- booking back. Keys are per customer; purge old ones with BookingService.purge_idempotency_keys.
CREATE TABLE idempotency_keys (
    customer_id     bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    key             text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    booking_id      bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (customer_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

CREATE TABLE reminders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id      bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    offset_minutes  integer NOT NULL CHECK (offset_minutes > 0),
    due_at          timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'cancelled')),
    -- a claim is a lease: a claimer that dies leaves it to expire, and the reminder is claimed again
    claim_token     text,
    claimed_until   timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    UNIQUE (booking_id, offset_minutes)
);
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE status = 'pending';

CREATE TABLE waitlist (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id         bigint NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    service_id          bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    staff_id            bigint REFERENCES staff (id) ON DELETE CASCADE,  -- NULL: anyone
    day                 date NOT NULL,
    status              text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'booked', 'left')),
    last_notified_at    timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE UNIQUE INDEX waitlist_one_wish_idx ON waitlist (customer_id, service_id, day, coalesce(staff_id, 0))
    WHERE status = 'waiting';
CREATE INDEX waitlist_day_idx ON waitlist (service_id, day) WHERE status = 'waiting';
