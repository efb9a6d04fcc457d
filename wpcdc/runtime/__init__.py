"""What runs: the streaming pipeline and its parts, the run loop, the snapshot
and the verification runs, metrics, and the JSON state files."""
