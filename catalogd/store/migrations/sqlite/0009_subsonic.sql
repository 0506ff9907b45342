-- OpenSubsonic access (issue 19; package catalogd/subsonic).
--
-- API keys (the OpenSubsonic apiKey extension): only the SHA-256 of the
-- key is kept; the key itself is shown once, when it is created.
CREATE TABLE subsonic_api_keys (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    key_hash     BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);
CREATE INDEX subsonic_api_keys_user ON subsonic_api_keys(user_id);

-- App passwords for the classic u+t+s token scheme, which needs the
-- password itself: sealed is AES-256-GCM (nonce || ciphertext) under a key
-- derived from catalogd's signing key, with the user id as associated data.
CREATE TABLE subsonic_app_passwords (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    sealed       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX subsonic_app_passwords_user ON subsonic_app_passwords(user_id);
