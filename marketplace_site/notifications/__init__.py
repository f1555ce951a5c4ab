"""E-mails to customers: order confirmations and the weekly "books for you" digest."""
