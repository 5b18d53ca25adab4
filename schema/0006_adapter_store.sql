-- Library entries own their bytes: a stored entry's files sit in the content store (adapters/<sha256>/),
-- written once; a linked entry points at the user's file and is hashed on every use.
-- storage is NULL for entries registered before the store; opening the library adopts them
-- (loratui/library/adopt.py), copying files whose bytes still match into the store.

ALTER TABLE adapters ADD COLUMN storage TEXT CHECK (storage IN ('store', 'link'));
ALTER TABLE adapters ADD COLUMN mtime_ns INTEGER;  -- newest mtime of the files when registered: a cheap drift sign
CREATE INDEX adapters_storage ON adapters (storage);
