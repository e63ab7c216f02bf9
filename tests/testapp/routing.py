"""Routing used by tests that do not install their own with apply_routes/override_settings."""

channel_routing: list = []
