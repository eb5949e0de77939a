"""Real servers the tests start themselves (or find through an environment variable)."""
