"""Vouchers staff configure as rules ("after the Nth purchase, X% off") and the worker grants."""
