-- The task an adapter was trained for (text-to-image, sequence-classification, semantic-segmentation,
-- causal-lm): what `gen` does with it and which base models can take it. Entries registered before this
-- migration get it from what their file says (loratui's own header key) or from their family.

ALTER TABLE adapters ADD COLUMN task TEXT;
UPDATE adapters SET task = coalesce(
    json_extract(metadata, '$."loratui.task"'),
    CASE WHEN family IN ('sd1', 'sd2', 'sdxl') THEN 'text-to-image' WHEN family = 'llm' THEN 'causal-lm' END
);
CREATE INDEX adapters_task ON adapters (task);
