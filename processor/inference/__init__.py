"""Finding sensitive regions: HTTP clients of the inference APIs and the built-in detectors."""
