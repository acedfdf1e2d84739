"""The periodic jobs, each run as `python -m shared.jobs.<name>`: retention, backup, alert digests,
workflow starts."""
