<?php
// The PHP-FPM + mysqli baseline of bench/run: what GET /api/setup/email_smtp does,
// written the way a PHP version of the responder would be — a persistent mysqli
// connection per FPM child, the same two prepared statements, the same JSON.
$db = new mysqli('p:localhost', getenv('BENCH_DB_USER'), getenv('BENCH_DB_PASSWORD'), getenv('BENCH_DB_NAME'), 0,
                 getenv('BENCH_DB_SOCKET'));
$st = $db->prepare('SELECT label, value FROM information');
$st->execute();
$st->bind_result($label, $value);
$stored = [];
while ($st->fetch()) { $stored[$label] = $value; }
$st->close();

$action = 'test.send';
$limit = 1;
$st = $db->prepare("SELECT settings_version AS v FROM audit_log
    WHERE action = ? AND outcome = 'success' AND settings_version IS NOT NULL
    GROUP BY settings_version ORDER BY settings_version DESC LIMIT ?");
$st->bind_param('si', $action, $limit);
$st->execute();
$st->bind_result($good);
$lastGood = $st->fetch() ? (string)$good : null;
$st->close();

$defaults = ['from_address' => '', 'smtp_username' => '', 'smtp_password' => null, 'smtp_host' => '',
    'smtp_port' => '25', 'smtp_connection_type' => 'None', 'smtp_authentication_type' => 'None',
    'smtp_tls_verify' => 'Full', 'smtp_tls_pin_sha256' => '', 'smtp_tls_ca_pem' => '',
    'smtp_connect_timeout' => '10', 'smtp_command_timeout' => '30', 'smtp_settings_version' => '0'];
$version = $stored['smtp_settings_version'] ?? '0';
$data = [];
foreach ($defaults as $key => $default) {
    if ($key === 'smtp_password') { $data['smtp_password_set'] = ($stored[$key] ?? '') !== ''; continue; }
    if ($key === 'smtp_settings_version') { $data[$key] = $version; continue; }
    $data[$key] = $stored[$key] ?? $default;
}
$data['last_known_good_version'] = $lastGood;
header('Content-Type: application/json; charset=utf-8');
header('Cache-Control: no-store');
header('X-Content-Type-Options: nosniff');
header('ETag: "' . $version . '"');
echo json_encode(['status' => 'success', 'data' => $data], JSON_UNESCAPED_SLASHES);
