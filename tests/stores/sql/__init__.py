"""Tests of the SQL reference store (reference_stores.sql) on SQLite, PostgreSQL and MariaDB."""
