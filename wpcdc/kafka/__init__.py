"""The Kafka adapter: client options, broker facts, the producing sink and the
topic reader. Never imports the runtime, the commands or another adapter."""
