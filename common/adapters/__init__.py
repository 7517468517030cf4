"""Adapters to the outside world: configuration, PostgreSQL (both pools), Redis (the cache and its
batching), Secrets Manager, observability, migrations, keyset cursors and the Kafka client settings.
Nothing here knows a business rule."""
