-- Tracing: each change keeps the W3C traceparent of the request that made
-- it (NULL when the request was not traced), so that the node fanning the
-- change out links its span to the request's, whichever node served it.
ALTER TABLE changes ADD COLUMN trace TEXT;
