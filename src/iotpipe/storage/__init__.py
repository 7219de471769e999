"""Storage adapters: the `Store` port (base), MySQL/MariaDB and SQLite."""
