"""Batch jobs: job store, runner and result assets."""
