"""The event bus: contracts in code (event types, envelopes), topology, relay and consumers."""
