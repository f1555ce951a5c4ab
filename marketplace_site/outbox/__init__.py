"""The transactional outbox: events recorded with the change they report."""
