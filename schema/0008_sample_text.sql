-- A sample's text, for tasks whose samples are text (causal-lm completions of [validation] prompts); null for
-- images, which stay in their files.

ALTER TABLE samples ADD COLUMN text TEXT;
