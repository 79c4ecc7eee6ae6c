"""What both apps use: jobs with heartbeats, leases and locks, the audit log, plain-SQL helpers
and hashing. Imports neither `labeling` nor `active_learning` (tests/test_import_direction.py);
its models name the project table by its label only."""
