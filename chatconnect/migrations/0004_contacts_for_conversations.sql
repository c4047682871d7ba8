-- Contacts for the conversations of a release that had none. Each existing conversation gets
-- an anonymous contact of its own (with the conversation's id, visitor name and email), and
-- the conversation's visitor token becomes that contact's, so it keeps working. Nothing to do
-- on a fresh database or one of the original application (no conversations table yet), nor
-- once done: schema.sql then creates the tables, indexes and columns. The tables are created
-- here as schema.sql has them (tests/test_database.py compares the two).
DO $$
BEGIN
    IF to_regclass('conversations') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pg_attribute
               WHERE attrelid = to_regclass('conversations') AND attname = 'contact_id'
                 AND NOT attisdropped) THEN
        RETURN;
    END IF;

    CREATE TABLE contacts (
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
    CREATE TABLE visitor_tokens (
        token_hash text PRIMARY KEY,
        client_id varchar NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
        contact_id uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now()
    );

    -- Last seen: the visitor's latest message, or the start of the conversation.
    INSERT INTO contacts (id, client_id, name, email, created_at, last_seen_at)
    SELECT v.id, v.client_id, v.visitor_name, v.visitor_email, v.created_at,
           coalesce((SELECT max(m.created_at) FROM messages m
                     WHERE m.conversation_id = v.id AND m.sender = 'visitor'), v.created_at)
    FROM conversations v;
    INSERT INTO visitor_tokens (token_hash, client_id, contact_id, created_at)
    SELECT visitor_token_hash, client_id, id, created_at FROM conversations;

    ALTER TABLE conversations ADD COLUMN contact_id uuid;
    UPDATE conversations SET contact_id = id;
    ALTER TABLE conversations
        ALTER COLUMN contact_id SET NOT NULL,
        ADD CONSTRAINT conversations_contact_id_fkey
            FOREIGN KEY (contact_id) REFERENCES contacts (id) ON DELETE CASCADE,
        DROP COLUMN visitor_token_hash;
END
$$;
