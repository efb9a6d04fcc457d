"""One module per CLI command: wiring from settings plus what it prints."""
