"""Real servers the tests start themselves when no endpoint is given."""
