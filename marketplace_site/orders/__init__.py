"""Cart and checkout: orders and their lines."""
