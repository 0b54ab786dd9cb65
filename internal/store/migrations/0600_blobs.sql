-- Image and delta blobs kept in the database itself (`rampart server --blobs postgres`), so that
-- replicas on several machines reach them without a shared folder. An upload streams in chunks
-- of a fixed size under an upload ID; once its SHA-256 is known a row in blobs names it. An
-- upload that no blobs row names is unfinished or abandoned and is swept. On SQLite the tables
-- stay empty: blobs live in the data folder.
CREATE TABLE blob_uploads (
    id         TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL
);
CREATE TABLE blob_chunks (
    upload_id TEXT NOT NULL REFERENCES blob_uploads(id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    data      BYTES NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    upload_id  TEXT NOT NULL UNIQUE REFERENCES blob_uploads(id),
    length     BIGINT NOT NULL,
    chunk_size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
