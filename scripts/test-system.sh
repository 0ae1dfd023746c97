#!/usr/bin/env bash
# Install the system tools the tests use and start PostgreSQL and Redis when they are down.
set -euo pipefail

need=()
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pdfsig >/dev/null || need+=(poppler-utils)
command -v qpdf >/dev/null || need+=(qpdf)
command -v zbarimg >/dev/null || need+=(zbar-tools)
command -v certutil >/dev/null || need+=(libnss3-tools)
command -v chromium >/dev/null || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
# The README walkthrough tests run its shell blocks, which read answers with jq.
command -v jq >/dev/null || need+=(jq)
command -v curl >/dev/null || need+=(curl)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v pg_dump >/dev/null || need+=(postgresql-client)
# The fault tests create a PostgreSQL cluster of their own and mount a small tmpfs.
command -v pg_createcluster >/dev/null || need+=(postgresql-common)
command -v mount >/dev/null || need+=(mount)
command -v redis-server >/dev/null || need+=(redis-server)
command -v tesseract >/dev/null || need+=(tesseract-ocr tesseract-ocr-eng)
[ -f /usr/share/tesseract-ocr/5/tessdata/chi_sim.traineddata ] || need+=(tesseract-ocr-chi-sim)
[ -d /usr/share/fonts/opentype/noto ] || need+=(fonts-noto-cjk)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
psql -h 127.0.0.1 -U postgres -d test -qtAc "SELECT 1" >/dev/null

# The rate-limit tests share their counts through a real Redis.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null
