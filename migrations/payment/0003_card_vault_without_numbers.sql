-- The simulated gateway's vault keeps no card number any more: it decides a
-- charge by the behaviour its test card was published with, recorded when
-- the card was tokenized. What payment holds of a card is its token, brand,
-- last four digits and expiry, like a real processor's customer record.
--
-- Expand and contract in one step is safe here: only this release's gateway
-- reads the vault, and every row gets its behaviour before the number goes.
ALTER TABLE card_tokens ADD COLUMN behaviour text;

UPDATE card_tokens SET behaviour = CASE number
    WHEN '4242424242424242' THEN 'approves'
    WHEN '4000000000000002' THEN 'declines'
    WHEN '4000000000009995' THEN 'insufficient_funds'
    WHEN '4000000000000119' THEN 'fails_twice_then_approves'
END;

-- A vaulted number the simulator never accepted cannot exist; if one did,
-- it is declined rather than kept.
UPDATE card_tokens SET behaviour = 'declines' WHERE behaviour IS NULL;

ALTER TABLE card_tokens
    ALTER COLUMN behaviour SET NOT NULL,
    ADD CONSTRAINT card_tokens_behaviour_known CHECK (
        behaviour IN ('approves', 'declines', 'insufficient_funds', 'fails_twice_then_approves')
    ),
    DROP COLUMN number;
