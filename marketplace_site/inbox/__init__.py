"""The inbox: which events each consumer has applied, so a redelivery is a no-op."""
