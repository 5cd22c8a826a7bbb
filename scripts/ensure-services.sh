#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on loopback; start them when they are installed but down.
# Exits non-zero (and says so) when one stays unreachable. Arguments name the services to check
# (postgres, redis; default both): `make test` needs only Redis, as the tests bring their own
# embedded PostgreSQL server unless TEST_DATABASE_URL or DATABASE_URL names one.
set -u
want=" ${*:-postgres redis} "
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if [[ $want == *" postgres "* ]] && ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if [[ $want == *" redis "* ]] && ! redis_up && command -v redis-server >/dev/null 2>&1; then
  echo "Redis is down: starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
ok=0
if [[ $want == *" postgres "* ]]; then
  pg_up || { echo "PostgreSQL is not reachable on 127.0.0.1:5432"; ok=1; }
fi
if [[ $want == *" redis "* ]]; then
  redis_up || { echo "Redis is not reachable on 127.0.0.1:6379"; ok=1; }
fi
exit $ok
