"""Promotions staff configure ("buy N, get the cheapest free") and the redemption ledger."""
