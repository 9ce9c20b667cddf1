"""Where results go: one module per sink (Kafka, JSON-lines files), the protocol they share, a factory."""
