"""Messages from an event's organisers to a filtered set of its registrants."""
