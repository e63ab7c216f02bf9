"""A small app with a bound model, for the data binding tests (in-process and live)."""
