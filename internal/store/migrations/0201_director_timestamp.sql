-- Every check-in asks for the device's director timestamp.json; keeping it in a column of its
-- own spares decoding all three files to serve it. NULL in rows written before this column:
-- those are served from files until the director next re-issues them.
ALTER TABLE director_metadata ADD COLUMN timestamp_file TEXT;
