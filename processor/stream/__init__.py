"""The stream processor: Kafka (or a local inbox) in, object storage in and out, completion events out."""
