"""The HTTP API compatible with the original anonymization API (``anonymizer serve``)."""
