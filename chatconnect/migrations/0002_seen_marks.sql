-- Seen marks of both sides on conversations of an older release. Guarded: on a fresh database
-- schema.sql creates the table with them.
ALTER TABLE IF EXISTS conversations
    ADD COLUMN IF NOT EXISTS visitor_last_seen_message_id bigint,
    ADD COLUMN IF NOT EXISTS agent_last_seen_message_id bigint;
