"""Real services started by the tests on the loopback interface."""
