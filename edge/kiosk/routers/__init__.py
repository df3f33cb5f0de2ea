"""One router per resource of the kiosk API."""
