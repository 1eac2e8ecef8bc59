"""Database access: connections (connection.py), server edition (edition.py), migrations."""
