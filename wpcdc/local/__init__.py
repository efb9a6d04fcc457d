"""The embedded local stack for the demo and the tests: a private MariaDB, the
Tansu broker and a real WordPress on this machine."""
