-- Settings of a generation that have no column of their own: max new tokens and temperature of a text
-- completion, the weights of a contact sheet, the device. JSON object.

ALTER TABLE generations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
CREATE INDEX generations_created ON generations (created);
