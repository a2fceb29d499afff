"""The 12351 simulator: a test and demo tool; production code never imports it."""
