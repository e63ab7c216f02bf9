"""Checks that protect consumers from requests they should not serve."""
