"""Configuration: the settings models and how they load, TLS contexts, and the
preflight rules that judge server and broker facts against the settings."""
