"""Settings per environment: base (shared), local, production, test."""
