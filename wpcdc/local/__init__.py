"""The embedded local stack for the demo and the tests: a private MariaDB or Oracle
MySQL (from a cached Debian sid tree), the Tansu broker and a real WordPress on this
machine."""
