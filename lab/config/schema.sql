-- The email-service's tables: made by lab/svc_data.py's seed(), and by the app itself
-- (lab/apps/emailsvc/web.py) if it starts first.
CREATE TABLE IF NOT EXISTS mailboxes (
    id serial PRIMARY KEY,
    address text NOT NULL UNIQUE,
    display_name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS emails (
    id serial PRIMARY KEY,
    mailbox_id integer REFERENCES mailboxes(id),
    sender text NOT NULL,
    recipient text NOT NULL,
    subject text NOT NULL DEFAULT '',
    body text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'deferred', 'failed', 'received')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS emails_status_idx ON emails (status);
CREATE INDEX IF NOT EXISTS emails_created_at_idx ON emails (created_at);
