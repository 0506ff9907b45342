-- Several catalogd on one database (issue 15): the tables PostgreSQL
-- needs for them, so both dialects share the code. On SQLite (one
-- catalogd) the purge dispatcher takes no lease and play_events stays one
-- table (retention deletes old rows in small batches).
--
-- leases: named leases held by one catalogd at a time (see leases.go);
-- expires_at in unix ms.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- login_limits: the login and registration rate limits (see limits.go):
-- per key ("a:" account, "ip:" address) the theoretical arrival time of
-- the generic cell rate algorithm, unix ms.
CREATE TABLE login_limits (
    key TEXT    PRIMARY KEY,
    tat INTEGER NOT NULL
) WITHOUT ROWID;

-- Retention deletes by started_at.
CREATE INDEX play_events_started ON play_events(started_at);
