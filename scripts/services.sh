#!/usr/bin/env bash
# Make sure the services the tests talk to answer: RabbitMQ on 127.0.0.1:5672 and
# PostgreSQL on 127.0.0.1:5432. Starts them when this machine has them installed;
# otherwise fails with what to do. Never skips.
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port seconds
  for _ in $(seq 1 "$2"); do answers "$1" && return 0; sleep 1; done
  return 1
}

ROOT="$(cd "$(dirname "$0")/.." && pwd)"

# RabbitMQ can answer and still be unable to run quorum queues (3.10 after a
# stop_app/start_app): probe with a real quorum queue round trip when the project's
# venv exists (bridge/transport/probe.py).
quorum_queues_work() {
  [ -x "$ROOT/.venv/bin/python" ] || return 0
  (cd "$ROOT" && .venv/bin/python -m bridge.transport.probe 2>&1) >&2
}

ensure_healthy_rabbitmq() {
  quorum_queues_work && return 0
  if command -v rabbitmqctl >/dev/null 2>&1; then
    echo "RabbitMQ cannot run quorum queues; restarting its app…" >&2
    rabbitmqctl stop_app >/dev/null 2>&1 || true
    rabbitmqctl start_app >/dev/null 2>&1 || true
    wait_for 5672 30 && quorum_queues_work && return 0
  fi
  echo "ERROR: RabbitMQ on 127.0.0.1:5672 cannot run quorum queues (see above); restart it" \
    "(rabbitmqctl stop; rabbitmq-server -detached) and run the test command again." >&2
  return 1
}

ensure_rabbitmq() {
  answers 5672 && { ensure_healthy_rabbitmq; return; }
  echo "RabbitMQ does not answer on 127.0.0.1:5672; trying to start it…" >&2
  if command -v rabbitmqctl >/dev/null 2>&1; then
    rabbitmqctl start_app >/dev/null 2>&1 || true
    wait_for 5672 10 && { ensure_healthy_rabbitmq; return; }
  fi
  if command -v rabbitmq-server >/dev/null 2>&1; then
    rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_for 5672 60 && { ensure_healthy_rabbitmq; return; }
  fi
  cat >&2 <<'MSG'
ERROR: the tests need RabbitMQ (3.10 or later) on 127.0.0.1:5672 with guest/guest.
Install it (Debian/Ubuntu: apt-get install rabbitmq-server) or start one, e.g.
  docker run -d -p 5672:5672 rabbitmq:3.12
then run the test command again.
MSG
  return 1
}

ensure_postgres() {
  answers 5432 && return 0
  echo "PostgreSQL does not answer on 127.0.0.1:5432; trying to start it…" >&2
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in /etc/postgresql/*; do
      pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start >/dev/null 2>&1 || true
    done
    wait_for 5432 30 && return 0
  fi
  cat >&2 <<'MSG'
ERROR: the PostgreSQL tests need a server on 127.0.0.1:5432 where user postgres may
connect without a password (trust auth). Install it (Debian/Ubuntu: apt-get install
postgresql, then set "host all all 127.0.0.1/32 trust" in pg_hba.conf) or point the
tests elsewhere with HB_TEST_POSTGRES_URL=postgresql://user@host:port/postgres.
MSG
  return 1
}

case "${1:-ensure}" in
  ensure) ensure_rabbitmq && ensure_postgres ;;
  rabbitmq) ensure_rabbitmq ;;
  postgres) ensure_postgres ;;
  *) echo "usage: $0 [ensure|rabbitmq|postgres]" >&2; exit 2 ;;
esac
