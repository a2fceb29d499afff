"""The 12385 Open311 simulator: a test and demo tool; production code never imports it."""
