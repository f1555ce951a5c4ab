"""The marketplace: the Django site and admin customers and staff use."""
