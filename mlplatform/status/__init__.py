"""``mlplatform status``: what is in production, what waits for a person, is the data drifting."""
