"""One router per resource of the Assistants API."""
