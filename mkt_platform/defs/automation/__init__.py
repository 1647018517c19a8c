"""Keeping the platform up to date: pull schedules and the declarative-automation sensor."""
