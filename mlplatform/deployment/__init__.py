"""Gradual (canary) release of approved model versions: metrics, sequential tests, decisions."""
