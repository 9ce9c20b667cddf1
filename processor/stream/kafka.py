"""Connection options shared by the consumer and the producer: brokers, client id, security (SASL, SSL)."""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from processor.settings import KafkaSettings


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments common to ``AIOKafkaConsumer`` and ``AIOKafkaProducer``."""
    if settings.bootstrap_servers is None:
        raise ValueError("kafka.bootstrap_servers is not set (the embedded inbox needs no Kafka)")
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism is not None:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        if settings.sasl_password is not None:
            options["sasl_plain_password"] = settings.sasl_password.get_secret_value()
    if settings.security_protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = create_ssl_context(
            cafile=str(settings.ssl_cafile) if settings.ssl_cafile is not None else None
        )
    return options
