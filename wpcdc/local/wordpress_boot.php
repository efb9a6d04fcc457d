<?php
/*
 * Boots Debian's WordPress against the database named in the environment, then
 * either installs it (argv[1] == "--install") or includes the snippet file in
 * argv[1] and prints its return value as JSON after a marker line.
 * Arguments for the snippet arrive as JSON on standard input, as $args.
 * Used by wpcdc.local.wordpress; not part of the streamer.
 */
ini_set('display_errors', 'stderr');
error_reporting(E_ALL & ~E_DEPRECATED & ~E_USER_DEPRECATED);

$env = function (string $name, ?string $default = null): string {
    $value = getenv($name);
    if ($value === false) {
        if ($default === null) {
            fwrite(STDERR, "wordpress_boot.php: $name is not set\n");
            exit(2);
        }
        return $default;
    }
    return $value;
};

define('DB_NAME', $env('WPCDC_WP_DB_NAME'));
define('DB_USER', $env('WPCDC_WP_DB_USER'));
define('DB_PASSWORD', $env('WPCDC_WP_DB_PASSWORD', ''));
define('DB_HOST', $env('WPCDC_WP_DB_HOST') . ':' . $env('WPCDC_WP_DB_PORT'));
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
define('WP_HOME', $env('WPCDC_WP_URL'));
define('WP_SITEURL', $env('WPCDC_WP_URL'));
define('ABSPATH', rtrim($env('WPCDC_WP_ROOT', '/usr/share/wordpress'), '/') . '/');
// Nothing may run behind the test's back: no cron spawning, no update checks.
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
if ($env('WPCDC_WP_MULTISITE', '0') === '1') {
    define('WP_ALLOW_MULTISITE', true);
    define('MULTISITE', true);
    define('SUBDOMAIN_INSTALL', false);
    define('DOMAIN_CURRENT_SITE', parse_url(WP_HOME, PHP_URL_HOST));
    define('PATH_CURRENT_SITE', '/');
    define('SITE_ID_CURRENT_SITE', 1);
    define('BLOG_ID_CURRENT_SITE', 1);
}
$table_prefix = $env('WPCDC_WP_TABLE_PREFIX', 'wp_');

$_SERVER['HTTP_HOST'] = parse_url(WP_HOME, PHP_URL_HOST);
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REQUEST_METHOD'] = 'GET';

// Pluggable: no mail server here, and WordPress mails the admin on install.
function wp_mail() { return true; }

$mode = $argv[1] ?? '';
if ($mode === '--install') {
    define('WP_INSTALLING', true);
}
require_once ABSPATH . 'wp-settings.php';

$stdin = stream_get_contents(STDIN);
$args = $stdin === '' ? null : json_decode($stdin, true, 512, JSON_THROW_ON_ERROR);

if ($mode === '--install') {
    require_once ABSPATH . 'wp-admin/includes/upgrade.php';
    $result = wp_install($args['title'], 'admin', 'admin@example.com', true, '', 'password');
} else {
    wp_set_current_user(1);
    $result = include $mode;
}
echo "\n@@wpcdc-result@@\n", json_encode($result, JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE);
