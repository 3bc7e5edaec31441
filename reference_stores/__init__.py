"""Reference implementations of the session-store port that pass the whole contract kit."""
