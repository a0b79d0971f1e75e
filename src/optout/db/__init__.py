"""Storage: table definitions (`tables`), engine and sessions (`engine`), migrations."""
