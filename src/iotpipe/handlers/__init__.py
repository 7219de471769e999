"""Lambda entry points: thin adapters over the services."""
