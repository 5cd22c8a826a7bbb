#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback; start them when they are installed but down.
# Exits non-zero (and says so) when either stays unreachable.
set -u
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "Redis is down: starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
ok=0
pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432"; ok=1; }
redis_up || { echo "Redis is not reachable on 127.0.0.1:6379"; ok=1; }
exit $ok
