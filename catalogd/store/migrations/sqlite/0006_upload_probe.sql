-- The probe of an upload travels with its packaging job (issue 17): the
-- upload is probed once, when it arrives, and the job packages with that
-- probe instead of running ffprobe again. probe is packager.Probe as JSON,
-- opaque to the store; '' (rows written before this migration) makes the
-- job probe the original itself.
ALTER TABLE uploads ADD COLUMN probe TEXT NOT NULL DEFAULT '';
