-- The adapter library: full-text search, where an adapter came from, and what was noticed on import.

ALTER TABLE adapters ADD COLUMN source TEXT;            -- the path or hf://repo/file@commit it was imported from
ALTER TABLE adapters ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';  -- JSON list, e.g. non-finite tensors kept

CREATE INDEX adapters_family ON adapters (family);
CREATE INDEX adapters_base_model ON adapters (base_model);
CREATE INDEX adapters_source_run ON adapters (source_run);
CREATE INDEX lineage_parent ON lineage (parent);

-- An external-content index: the text lives once, in adapters; the triggers keep the index in step.
-- tags and trigger_words are JSON lists; the tokenizer drops the brackets and quotes.
CREATE VIRTUAL TABLE adapters_fts USING fts5 (
    name, tags, trigger_words, notes,
    content = 'adapters', content_rowid = 'id',
    tokenize = "unicode61 remove_diacritics 2"
);

CREATE TRIGGER adapters_fts_insert AFTER INSERT ON adapters BEGIN
    INSERT INTO adapters_fts (rowid, name, tags, trigger_words, notes)
    VALUES (new.id, new.name, new.tags, new.trigger_words, new.notes);
END;

CREATE TRIGGER adapters_fts_delete AFTER DELETE ON adapters BEGIN
    INSERT INTO adapters_fts (adapters_fts, rowid, name, tags, trigger_words, notes)
    VALUES ('delete', old.id, old.name, old.tags, old.trigger_words, old.notes);
END;

CREATE TRIGGER adapters_fts_update AFTER UPDATE OF name, tags, trigger_words, notes ON adapters BEGIN
    INSERT INTO adapters_fts (adapters_fts, rowid, name, tags, trigger_words, notes)
    VALUES ('delete', old.id, old.name, old.tags, old.trigger_words, old.notes);
    INSERT INTO adapters_fts (rowid, name, tags, trigger_words, notes)
    VALUES (new.id, new.name, new.tags, new.trigger_words, new.notes);
END;

-- Adapters registered before this migration become searchable too.
INSERT INTO adapters_fts (adapters_fts) VALUES ('rebuild');
