"""Real-time delivery: NOTIFY from PostgreSQL wakes the requests waiting in this process."""
