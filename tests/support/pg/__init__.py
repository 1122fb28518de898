"""The parts of the throw-away PostgreSQL clusters; use them through ``tests.support.postgres``."""
