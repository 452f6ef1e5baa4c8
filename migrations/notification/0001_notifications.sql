-- Every message the service has sent, as it was sent: the delivery sink's record.
CREATE TABLE notifications (
    notification_id uuid PRIMARY KEY,
    booking_id      uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('confirmation', 'cancellation', 'correction')),
    channel         text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX notifications_by_booking ON notifications (booking_id, sent_at);
