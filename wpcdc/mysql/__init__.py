"""The MySQL/MariaDB adapter: connections, server facts, WordPress reads, the
consistent read, the signal table and the binlog source. Never imports the
runtime, the commands or another adapter."""
