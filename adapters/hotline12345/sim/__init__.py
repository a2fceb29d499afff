"""The 12345 simulator: a test and demo tool; production code never imports it."""
