-- ChatConnect: the whole current schema. Safe to apply twice.
-- users, clients, client_widgets and session keep the names, types and defaults of the
-- tables created by the original application, so that its databases upgrade in place
-- (see chatconnect/migrations/).

CREATE TABLE IF NOT EXISTS users (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid(),
    username text NOT NULL,
    password text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    credentials_version integer NOT NULL DEFAULT 1,
    CONSTRAINT users_username_unique UNIQUE (username)
);
-- Names that differ only in the case of ASCII letters are the same name (see username_key in
-- chatconnect/repositories/users.py); migration 0003 replaced an index on lower(username).
CREATE UNIQUE INDEX IF NOT EXISTS users_username_key_unique
    ON users (translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));

CREATE TABLE IF NOT EXISTS clients (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id varchar NOT NULL,
    name text NOT NULL,
    public_api_key varchar NOT NULL,
    allowed_domains jsonb NOT NULL DEFAULT '[]'::jsonb,
    status varchar NOT NULL DEFAULT 'active',
    created_at timestamp NOT NULL DEFAULT now(),
    CONSTRAINT clients_public_api_key_unique UNIQUE (public_api_key),
    CONSTRAINT clients_user_id_users_id_fk FOREIGN KEY (user_id) REFERENCES users (id)
);
CREATE INDEX IF NOT EXISTS clients_user_id_created_at_id_idx ON clients (user_id, created_at, id);

CREATE TABLE IF NOT EXISTS client_widgets (
    id varchar PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id varchar NOT NULL,
    primary_color varchar NOT NULL DEFAULT '#3b82f6',
    position varchar NOT NULL DEFAULT 'bottom-right',
    welcome_message text NOT NULL DEFAULT 'Hi! How can I help?',
    widget_name varchar NOT NULL DEFAULT 'Support',
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    CONSTRAINT client_widgets_client_id_unique UNIQUE (client_id),
    CONSTRAINT client_widgets_client_id_clients_id_fk FOREIGN KEY (client_id)
        REFERENCES clients (id) ON DELETE CASCADE
);

-- Server-side login sessions (the original connect-pg-simple table, extended). sid holds the
-- SHA-256 hex digest of the cookie value, never the value itself; id is the public name of a
-- session. expire is the earlier of the idle and the absolute deadline, in UTC.
CREATE TABLE IF NOT EXISTS session (
    sid varchar NOT NULL COLLATE "default",
    sess json NOT NULL,
    expire timestamp(6) NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    user_id varchar REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    user_agent text,
    credentials_version integer NOT NULL DEFAULT 1,
    CONSTRAINT session_pkey PRIMARY KEY (sid)
);
CREATE INDEX IF NOT EXISTS "IDX_session_expire" ON session (expire);
CREATE INDEX IF NOT EXISTS session_user_id_idx ON session (user_id);

-- Personal access tokens: token_hash is the SHA-256 hex digest of the token.
CREATE TABLE IF NOT EXISTS api_tokens (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id varchar NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    credentials_version integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS api_tokens_user_id_idx ON api_tokens (user_id);

-- Fixed-window counters shared by every worker and host (login throttle, public routes).
CREATE UNLOGGED TABLE IF NOT EXISTS rate_limits (
    key text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL
);

CREATE TABLE IF NOT EXISTS conversations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    visitor_name text,
    visitor_email text,
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz NOT NULL DEFAULT now(),
    visitor_last_seen_message_id bigint,
    agent_last_seen_message_id bigint
);
CREATE INDEX IF NOT EXISTS conversations_client_activity_idx
    ON conversations (client_id, last_message_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS conversations_client_status_activity_idx
    ON conversations (client_id, status, last_message_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS conversations_tags_idx ON conversations USING gin (tags);

CREATE TABLE IF NOT EXISTS messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    sender text NOT NULL CHECK (sender IN ('visitor', 'agent')),
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS messages_conversation_id_idx ON messages (conversation_id, id);

-- Replaced by the events table's notification.
DROP TRIGGER IF EXISTS messages_notify ON messages;
DROP FUNCTION IF EXISTS notify_new_message();

-- Real-time: every change, as the durable, ordered feed that event streams and webhooks read.
-- Ids become visible in increasing order: events_order takes a lock held until the inserting
-- transaction ends, then draws the id, so an id is drawn only once every smaller one has been
-- committed or rolled back. A reader that resumes after id N never skips one committed later.
CREATE SEQUENCE IF NOT EXISTS events_id_seq AS bigint;
CREATE TABLE IF NOT EXISTS events (
    id bigint PRIMARY KEY,
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    conversation_id uuid REFERENCES conversations (id) ON DELETE CASCADE,
    type text NOT NULL,
    data jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE events_id_seq OWNED BY events.id;
CREATE INDEX IF NOT EXISTS events_client_id_idx ON events (client_id, id);
CREATE INDEX IF NOT EXISTS events_conversation_id_idx ON events (conversation_id, id);
CREATE INDEX IF NOT EXISTS events_created_at_idx ON events (created_at);

CREATE OR REPLACE FUNCTION events_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7202611260);
    NEW.id := nextval('events_id_seq');
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER events_order BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_order();

-- Wakes the streams of the event's conversation and owner, in every process, at commit.
CREATE OR REPLACE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('chatconnect_events', json_build_object(
        'id', NEW.id, 'type', NEW.type, 'client_id', NEW.client_id,
        'owner_id', (SELECT user_id FROM clients WHERE id = NEW.client_id),
        'conversation_id', NEW.conversation_id)::text);
    RETURN NEW;
END
$$;
CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_notify();

-- The widget in the browser: its style (one row per client, created with it; see migration
-- 0005 for clients older than the table) and the client's business hours (a row once set;
-- without one the client is always open).
CREATE TABLE IF NOT EXISTS widget_styles (
    client_id varchar PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    theme text NOT NULL DEFAULT 'light' CHECK (theme IN ('light', 'dark', 'auto')),
    font_family text NOT NULL DEFAULT 'system'
        CHECK (font_family IN ('system', 'sans-serif', 'serif', 'monospace')),
    border_radius integer NOT NULL DEFAULT 12 CHECK (border_radius BETWEEN 0 AND 24),
    offset_x integer NOT NULL DEFAULT 20 CHECK (offset_x BETWEEN 0 AND 200),
    offset_y integer NOT NULL DEFAULT 20 CHECK (offset_y BETWEEN 0 AND 200),
    launcher_icon text NOT NULL DEFAULT 'chat' CHECK (launcher_icon IN ('chat', 'help', 'none')),
    show_on_mobile boolean NOT NULL DEFAULT true,
    header_text text NOT NULL DEFAULT '' CHECK (char_length(header_text) <= 100),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- timezone NULL: always open. schedule: {"mon": [["09:00", "17:00"], …], …, "sun": []}.
CREATE TABLE IF NOT EXISTS business_hours (
    client_id varchar PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    timezone text,
    schedule jsonb NOT NULL,
    offline_message text NOT NULL CHECK (char_length(offline_message) BETWEEN 1 AND 500),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Real-time: presence. When a signed-in user last had an event stream or events long-poll
-- open, shared by every worker and host; "agents online" means seen within the last minute.
-- An open stream refreshes it at least every 15 s. Lost on a crash of the server, like the
-- streams it describes, so not logged.
CREATE UNLOGGED TABLE IF NOT EXISTS agent_presence (
    user_id varchar PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    seen_at timestamptz NOT NULL
);

-- Webhooks: URLs a client registers to receive its stored events. secret signs every
-- delivery (it must be kept to sign, so it cannot be stored hashed); an empty events list
-- means every stored type. last_event_id is the id up to which the events of the client have
-- been turned into deliveries: ids become visible in increasing order (see events), so
-- resuming after it never skips an event.
CREATE TABLE IF NOT EXISTS webhooks (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    url text NOT NULL,
    secret text NOT NULL,
    events text[] NOT NULL DEFAULT '{}',
    active boolean NOT NULL DEFAULT true,
    last_event_id bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhooks_client_id_created_at_idx ON webhooks (client_id, created_at, id);
CREATE INDEX IF NOT EXISTS webhooks_last_event_id_idx ON webhooks (last_event_id);

-- One row per event and webhook, and one per redelivery asked for (redelivery_of names the
-- delivery it repeats). attempt counts the attempts made; a pending row is due at
-- next_attempt_at. A worker leases a row while it attempts it:
-- lease_token names the attempt, leased_until bounds it, leased_by is the backend pid of the
-- worker's own session, so a row held by a worker that died is taken over at once.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id varchar NOT NULL,
    webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    event_type text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempt integer NOT NULL DEFAULT 0,
    response_status integer,
    duration_ms integer,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz DEFAULT now(),
    lease_token uuid,
    leased_until timestamptz,
    leased_by integer,
    redelivery_of uuid
);
CREATE UNIQUE INDEX IF NOT EXISTS webhook_deliveries_once_idx
    ON webhook_deliveries (webhook_id, event_id) WHERE redelivery_of IS NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_log_idx
    ON webhook_deliveries (webhook_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx
    ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_leased_idx
    ON webhook_deliveries (webhook_id) WHERE lease_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_event_id_idx ON webhook_deliveries (event_id);
-- Contacts, verified identity and personal data ---------------------------------------------
-- A contact is a visitor of one client: anonymous (external_id NULL) from its first
-- conversation on, or verified through a signed identify, where the same external_id on any
-- device is the same contact. Every conversation belongs to one contact; deleting a contact
-- takes its conversations, messages and visitor tokens with it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE IF NOT EXISTS contacts (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    external_id text,
    name text,
    email text,
    verified boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contacts_client_id_external_id_unique UNIQUE (client_id, external_id),
    CONSTRAINT contacts_verified_iff_external_id CHECK (verified = (external_id IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS contacts_client_seen_idx
    ON contacts (client_id, last_seen_at DESC, id DESC);
-- Search matches a substring of the name, the email or the external id (see bench/contacts.py).
CREATE INDEX IF NOT EXISTS contacts_search_idx ON contacts USING gin (
    (coalesce(name, '') || chr(31) || coalesce(email, '') || chr(31) || coalesce(external_id, ''))
    gin_trgm_ops);

-- The browser's proof of being a contact: token_hash is the SHA-256 hex digest of the
-- X-Visitor-Token. A contact has one token per browser (or device) it was reached from.
CREATE TABLE IF NOT EXISTS visitor_tokens (
    token_hash text PRIMARY KEY,
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS visitor_tokens_contact_id_idx ON visitor_tokens (contact_id);

ALTER TABLE conversations ADD COLUMN IF NOT EXISTS contact_id uuid NOT NULL
    CONSTRAINT conversations_contact_id_fkey REFERENCES contacts (id) ON DELETE CASCADE;
CREATE INDEX IF NOT EXISTS conversations_contact_activity_idx
    ON conversations (contact_id, last_message_at DESC, id DESC);

-- identity_secret_encrypted: the HMAC key of identify, AES-GCM encrypted (chatconnect/identity.py).
ALTER TABLE clients
    ADD COLUMN IF NOT EXISTS identity_secret_encrypted bytea,
    ADD COLUMN IF NOT EXISTS identity_required boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS retention_days integer
        CONSTRAINT clients_retention_days_range CHECK (retention_days BETWEEN 1 AND 3650);

-- Identify signatures accepted so far, each kept until it could no longer be accepted anyway
-- (its timestamp + 300 s), so that none is accepted twice.
CREATE TABLE IF NOT EXISTS identity_signatures (
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    signature text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, signature)
);
CREATE INDEX IF NOT EXISTS identity_signatures_expires_at_idx ON identity_signatures (expires_at);

-- Knowledge base: help articles of a client, searched with PostgreSQL full-text search.
--
-- Each language has a text search configuration of our own, kb_<language>, a copy of
-- PostgreSQL's with the unaccent dictionary in front of the stemmer: accent-insensitive
-- matching (cafe finds café) that ts_headline also applies, so snippets keep the accents.
-- Without the unaccent extension (PostgreSQL's contrib, missing from some builds) the copies
-- keep their stemmer alone and search is accent-sensitive; the first upgrade that finds the
-- extension adds it and recomputes the stored vectors.
DO $$
DECLARE
    language text;
    config text;
    unaccent_schema name;
    vectors_stale boolean := false;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'unaccent')
       AND EXISTS (SELECT FROM pg_available_extensions WHERE name = 'unaccent') THEN
        BEGIN
            CREATE EXTENSION unaccent;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'knowledge base search stays accent-sensitive: %', SQLERRM;
        END;
    END IF;
    SELECT extnamespace::regnamespace::name INTO unaccent_schema
    FROM pg_extension WHERE extname = 'unaccent';
    FOREACH language IN ARRAY ARRAY[
        'simple', 'arabic', 'armenian', 'basque', 'catalan', 'danish', 'dutch', 'english',
        'finnish', 'french', 'german', 'greek', 'hindi', 'hungarian', 'indonesian', 'irish',
        'italian', 'lithuanian', 'nepali', 'norwegian', 'portuguese', 'romanian', 'russian',
        'serbian', 'spanish', 'swedish', 'tamil', 'turkish', 'yiddish']
    LOOP
        config := 'kb_' || language;
        IF NOT EXISTS (SELECT FROM pg_ts_config WHERE cfgname = config
                       AND cfgnamespace = current_schema()::regnamespace) THEN
            EXECUTE format('CREATE TEXT SEARCH CONFIGURATION %I (COPY = pg_catalog.%I)',
                           config, language);
        END IF;
        IF unaccent_schema IS NOT NULL AND NOT EXISTS (
                SELECT FROM pg_ts_config_map m JOIN pg_ts_dict d ON d.oid = m.mapdict
                WHERE m.mapcfg = config::regconfig AND d.dictname = 'unaccent') THEN
            EXECUTE format('ALTER TEXT SEARCH CONFIGURATION %I ALTER MAPPING FOR hword, '
                           'hword_part, word WITH %I.unaccent, pg_catalog.%I', config,
                           unaccent_schema,
                           CASE language WHEN 'simple' THEN 'simple' ELSE language || '_stem' END);
            vectors_stale := true;
        END IF;
    END LOOP;
    IF vectors_stale AND to_regclass('knowledge_base') IS NOT NULL THEN
        UPDATE knowledge_base SET locale = locale;  -- recomputes search_vector
    END IF;
END
$$;

-- The configuration of an article's locale (a BCP 47 tag), by its language subtag; unknown
-- languages are not stemmed. Immutable, as a generated column requires: the names are
-- resolved when the function is created (a SQL-standard body), not looked up per call.
CREATE OR REPLACE FUNCTION kb_search_config(locale text) RETURNS regconfig
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE split_part(lower(locale), '-', 1)
    WHEN 'ar' THEN 'kb_arabic'::regconfig WHEN 'hy' THEN 'kb_armenian'::regconfig
    WHEN 'eu' THEN 'kb_basque'::regconfig WHEN 'ca' THEN 'kb_catalan'::regconfig
    WHEN 'da' THEN 'kb_danish'::regconfig WHEN 'nl' THEN 'kb_dutch'::regconfig
    WHEN 'en' THEN 'kb_english'::regconfig WHEN 'fi' THEN 'kb_finnish'::regconfig
    WHEN 'fr' THEN 'kb_french'::regconfig WHEN 'de' THEN 'kb_german'::regconfig
    WHEN 'el' THEN 'kb_greek'::regconfig WHEN 'hi' THEN 'kb_hindi'::regconfig
    WHEN 'hu' THEN 'kb_hungarian'::regconfig WHEN 'id' THEN 'kb_indonesian'::regconfig
    WHEN 'ga' THEN 'kb_irish'::regconfig WHEN 'it' THEN 'kb_italian'::regconfig
    WHEN 'lt' THEN 'kb_lithuanian'::regconfig WHEN 'ne' THEN 'kb_nepali'::regconfig
    WHEN 'no' THEN 'kb_norwegian'::regconfig WHEN 'nb' THEN 'kb_norwegian'::regconfig
    WHEN 'nn' THEN 'kb_norwegian'::regconfig WHEN 'pt' THEN 'kb_portuguese'::regconfig
    WHEN 'ro' THEN 'kb_romanian'::regconfig WHEN 'ru' THEN 'kb_russian'::regconfig
    WHEN 'sr' THEN 'kb_serbian'::regconfig WHEN 'es' THEN 'kb_spanish'::regconfig
    WHEN 'sv' THEN 'kb_swedish'::regconfig WHEN 'ta' THEN 'kb_tamil'::regconfig
    WHEN 'tr' THEN 'kb_turkish'::regconfig WHEN 'yi' THEN 'kb_yiddish'::regconfig
    ELSE 'kb_simple'::regconfig END;

-- What an article is found by: its title (weight A) and body text (B), stemmed in its
-- language and, for queries in another language, unstemmed too.
CREATE OR REPLACE FUNCTION kb_search_vector(locale text, title text, body_text text)
    RETURNS tsvector LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN setweight(to_tsvector(kb_search_config(locale), title), 'A')
    || setweight(to_tsvector('kb_simple', title), 'A')
    || setweight(to_tsvector(kb_search_config(locale), body_text), 'B')
    || setweight(to_tsvector('kb_simple', body_text), 'B');

-- OR of tsqueries: a search query parsed in each language of a client's articles.
CREATE OR REPLACE AGGREGATE kb_tsquery_or(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);

-- body_html is body_markdown rendered and sanitised, body_text its plain text (what search
-- and snippets read). views is not indexed, so counting a view is a HOT update.
CREATE TABLE IF NOT EXISTS knowledge_base (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    title text NOT NULL,
    slug text NOT NULL,
    body_markdown text NOT NULL DEFAULT '',
    body_html text NOT NULL DEFAULT '',
    body_text text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published')),
    locale text NOT NULL DEFAULT 'en',
    category text,
    views bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    search_vector tsvector NOT NULL
        GENERATED ALWAYS AS (kb_search_vector(locale, title, body_text)) STORED,
    CONSTRAINT knowledge_base_client_id_slug_unique UNIQUE (client_id, slug)
) WITH (fillfactor = 90);
CREATE INDEX IF NOT EXISTS knowledge_base_client_updated_idx
    ON knowledge_base (client_id, updated_at DESC, id DESC);
-- The languages a client writes in (each search parses its query in them), without reading
-- the client's rows.
CREATE INDEX IF NOT EXISTS knowledge_base_client_locale_idx ON knowledge_base (client_id, locale);

-- Search is per client: with btree_gin (contrib, like unaccent) one GIN index holds client_id
-- beside the lexemes, so a search reads only that client's entries and its cost does not grow
-- with the other clients' articles. Without the extension, the index holds the lexemes alone.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'btree_gin')
       AND EXISTS (SELECT FROM pg_available_extensions WHERE name = 'btree_gin') THEN
        BEGIN
            CREATE EXTENSION btree_gin;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'knowledge base search index without client_id: %', SQLERRM;
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'btree_gin') THEN
        DROP INDEX IF EXISTS knowledge_base_search_idx;
        CREATE INDEX IF NOT EXISTS knowledge_base_client_search_idx
            ON knowledge_base USING gin (client_id, search_vector);
    ELSE
        CREATE INDEX IF NOT EXISTS knowledge_base_search_idx
            ON knowledge_base USING gin (search_vector);
    END IF;
END
$$;

-- Caches: each worker keeps the public widget configuration and signed-in sessions in memory
-- (chatconnect/caches.py), and these triggers tell every worker what changed, whoever changed
-- it (the app, another host, plain SQL). A payload is words: each drops the cached entry of
-- that key and the entries of that group (a client id, a user id); `*` drops everything.
-- Notifications are sent at commit, and not at all on rollback.

-- Everything the widget route serves of a client: any row change names the client, and the
-- public keys it had and has (a new key may be cached as unknown).
CREATE OR REPLACE FUNCTION notify_widget_config() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN  -- TRUNCATE
        PERFORM pg_notify('chatconnect_widget_config', '*');
        RETURN NULL;
    END IF;
    PERFORM pg_notify('chatconnect_widget_config', concat_ws(' ',
        old_row ->> TG_ARGV[0], new_row ->> TG_ARGV[0],
        old_row ->> 'public_api_key', new_row ->> 'public_api_key'));
    RETURN NULL;
END
$$;

-- The widget configuration follows `source`, whose column `client_column` holds the client id.
-- A table the public configuration comes to depend on needs one line, as below.
CREATE OR REPLACE FUNCTION widget_config_follows(source regclass, client_column text DEFAULT 'client_id')
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE OR REPLACE TRIGGER widget_config_notify
                    AFTER INSERT OR UPDATE OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION notify_widget_config(%L)', source, client_column);
    EXECUTE format('CREATE OR REPLACE TRIGGER widget_config_notify_truncate
                    AFTER TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION notify_widget_config()', source);
END
$$;

SELECT widget_config_follows('clients', 'id');
SELECT widget_config_follows('client_widgets');
SELECT widget_config_follows('widget_styles');
SELECT widget_config_follows('business_hours');

-- Signed-in sessions: a session that changes (a touch, a revocation, sign-out, expiry set by
-- hand) or goes (deleted, its user deleted or its password changed) is looked up again. A new
-- session needs nothing: unknown cookies are not cached.
CREATE OR REPLACE FUNCTION notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN  -- TRUNCATE
        PERFORM pg_notify('chatconnect_sessions', '*');
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('chatconnect_sessions', OLD.id);
    ELSE
        PERFORM pg_notify('chatconnect_sessions', concat_ws(' ', OLD.sid, OLD.user_id));
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER session_cache_notify AFTER UPDATE OR DELETE ON session
    FOR EACH ROW EXECUTE FUNCTION notify_session_change();
CREATE OR REPLACE TRIGGER session_cache_notify_truncate AFTER TRUNCATE ON session
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
CREATE OR REPLACE TRIGGER session_cache_notify AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_session_change();
CREATE OR REPLACE TRIGGER session_cache_notify_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_session_change();
