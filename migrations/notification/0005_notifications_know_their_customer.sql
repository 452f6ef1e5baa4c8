-- Whose booking a message is about, so a customer's token reads only its
-- own messages. Messages recorded before this carry none and are shown to
-- operators only.
ALTER TABLE notifications ADD COLUMN customer_id text;
