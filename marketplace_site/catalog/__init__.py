"""The book catalog: categories and books, and the events their changes produce."""
