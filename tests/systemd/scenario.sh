#!/bin/bash
# Runs inside the booted container as a oneshot unit; writes its findings to /results.
set -u
R=/results
check() { local name=$1; shift; if "$@"; then echo "$name=ok" >>"$R/checks"; else echo "$name=FAIL" >>"$R/checks"; fi; }
wait_for() { local seconds=$1; shift; for _ in $(seq $((seconds * 5))); do "$@" && return 0; sleep 0.2; done; return 1; }
state() { systemctl show -p "$1" --value hwdaemon; }

systemctl start hwdaemon                      # Type=notify: returns only after READY=1
check active_after_start test "$(systemctl is-active hwdaemon)" = active
check ready_before_active sh -c 'journalctl -u hwdaemon -o cat | grep -q daemon_ready'
check status_line sh -c 'systemctl show -p StatusText --value hwdaemon | grep -q "watching 1 inbox"'

cp "$R/first.png" /var/lib/hwdaemon/inbox/first.png
check dropped_file_processed wait_for 90 test -s /var/lib/hwdaemon/outbox/first.txt
check original_filed test -f /var/lib/hwdaemon/inbox/processed/first.png

sed -i 's/formats: \[txt\]/formats: [csv]/' /etc/hwdaemon/config.yaml
systemctl reload hwdaemon
check reload_logged wait_for 30 sh -c 'journalctl -u hwdaemon -o cat | grep -q config_reloaded'
cp "$R/second.png" /var/lib/hwdaemon/inbox/second.png
check reload_applied wait_for 90 test -s /var/lib/hwdaemon/outbox/second.csv

kill -STOP "$(state MainPID)"                 # hang the daemon: no more WATCHDOG=1
check watchdog_restarted wait_for 120 sh -c '[ "$(systemctl show -p NRestarts --value hwdaemon)" -ge 1 ] && [ "$(systemctl is-active hwdaemon)" = active ]'
cp "$R/third.png" /var/lib/hwdaemon/inbox/third.png
check works_after_restart wait_for 120 test -s /var/lib/hwdaemon/outbox/third.csv

systemctl stop hwdaemon
check stop_result_success test "$(state Result)" = success
check stop_exit_zero test "$(state ExecMainStatus)" = 0
check stop_drained sh -c 'journalctl -u hwdaemon -o cat | grep -q daemon_stopped'

journalctl -u hwdaemon -o cat >"$R/journal.txt" 2>&1
systemctl show hwdaemon >"$R/show.txt"
touch "$R/finished"
systemctl poweroff
