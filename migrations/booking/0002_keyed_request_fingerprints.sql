-- Request fingerprints were an unsalted SHA-256 of the raw request, card
-- number and CVC included: guessable by trying card numbers. They are now an
-- HMAC keyed with a secret from configuration, without the CVC. The old
-- values cannot be recomputed (the requests are not kept), so they go: a
-- repeated request under an old key is answered with its booking without
-- comparing bodies, which is what the key promised when it was made.
ALTER TABLE bookings ALTER COLUMN request_fingerprint DROP NOT NULL;
UPDATE bookings SET request_fingerprint = NULL;
