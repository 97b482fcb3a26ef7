"""Shared kernel of clinicflow: event envelope and schemas, topics, settings,
chain configuration, clock, Kafka/Redis helpers and HTTP plumbing."""
