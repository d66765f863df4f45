"""An event's attendee list for organisers: search, filters, exports, decisions and the organiser API."""
