"""wpcdc: change-data-capture for WordPress, from the MySQL/MariaDB binlog to Kafka."""

__version__ = "0.1.0"
