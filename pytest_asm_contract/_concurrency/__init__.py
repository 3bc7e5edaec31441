"""Concurrency: workload plans, thread and process runners, histories and their checker,
killed writers."""
