#!/bin/bash
# The wpcdc account and its grants (README, "Setup"), created on the database's
# first start by the MariaDB image's entrypoint. Live re-snapshots (`wpcdc
# resnapshot`) also need rights on the signal table: see README, "Re-snapshot".
set -euo pipefail
mariadb -uroot -p"${MARIADB_ROOT_PASSWORD}" <<SQL
CREATE USER IF NOT EXISTS 'wpcdc'@'%' IDENTIFIED BY '${DB_WPCDC_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'wpcdc'@'%';
GRANT SELECT ON \`wordpress\`.* TO 'wpcdc'@'%';
SQL
