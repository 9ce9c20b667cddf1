"""Where events come from: one module per source (Kafka, the local inbox), the protocol they share, a factory."""
