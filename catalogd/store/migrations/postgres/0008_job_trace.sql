-- A packaging job continues the trace of the upload that queued it
-- (issue 18): trace_parent is the W3C traceparent of the upload request's
-- span when that request was traced, '' otherwise (and for every other job).
ALTER TABLE jobs ADD COLUMN trace_parent TEXT NOT NULL DEFAULT '';
