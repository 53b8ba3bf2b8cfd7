#!/usr/bin/env bash
# Migrate, load the demo, then run the web server and a Celery worker together.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}
mkdir -p var

"$BIN/python" manage.py migrate --noinput -v0
# The default cache (login limits, token revocation) is a table of the database; migrate makes
# it once, this again after CACHE_URL is switched off.
"$BIN/python" manage.py createcachetable
"$BIN/python" manage.py seed_demo
"$BIN/python" manage.py collectstatic --noinput -v0

pids=()
cleanup() {
  # The background model preparation is a subshell: stop what it runs too.
  for pid in "${pids[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; done
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# One worker runs light jobs (with beat); GENERATION_PROCESSES (default 1) write answers, each
# with GENERATION_BATCH_SIZE task threads (default 16) whose answers of one model are written
# together, one forward pass per token for all, so that both sides of every battle are written
# at once; a third runs training, one run at a time in a fresh process, so that a long run
# never holds up the arena's answers.
"$BIN/celery" -A config worker -Q default --concurrency 1 -n main@%h --beat \
    --schedule var/celerybeat-schedule --loglevel INFO >var/worker.log 2>&1 &
worker=$!
pids+=($worker)
cores=$(nproc 2>/dev/null || echo 1)
processes=${GENERATION_PROCESSES:-1}
export GENERATION_BATCH_SIZE=${GENERATION_BATCH_SIZE:-16}
for i in $(seq 1 "$processes"); do
  log=var/generate-worker.log
  [ "$i" = 1 ] || log=var/generate-worker-$i.log
  TORCH_NUM_THREADS=${TORCH_NUM_THREADS:-$(( cores > processes ? cores / processes : 1 ))} \
    "$BIN/celery" -A config worker -Q generate -n "generate$i@%h" --pool threads \
    --concurrency "$GENERATION_BATCH_SIZE" --loglevel INFO >"$log" 2>&1 &
  pids+=($!)
done
"$BIN/celery" -A config worker -Q gpu --concurrency 1 --prefetch-multiplier 1 \
    --max-tasks-per-child 1 -n gpu@%h --loglevel INFO >var/gpu-worker.log 2>&1 &
pids+=($!)
# Convert the bundled model to safetensors once, in the background (the first answer waits),
# then let the demo's models write the demo project's candidate answers (once; each ranking
# item opens as its answers are written), without holding up the arena's queue.
{ "$BIN/python" manage.py prepare_models &&
    "$BIN/python" manage.py demo_answers --after-vote-import; } >var/prepare_models.log 2>&1 &
pids+=($!)
"$BIN/gunicorn" config.wsgi --bind "$HOST:$PORT" --workers 2 --threads "${WEB_THREADS:-4}" --timeout 300 \
    --access-logfile var/access.log --error-logfile - &
web=$!
pids+=($web)

for _ in $(seq 1 100); do
  curl -fsS "http://$HOST:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
cat <<MSG

  RLHF Platform is running at http://$HOST:$PORT/
  Demo logins (password: demo-password): annotator, reviewer, researcher, admin
  API docs: http://$HOST:$PORT/api/docs/   OpenAI-compatible: http://$HOST:$PORT/v1/chat/completions
  Worker logs: var/worker.log, var/generate-worker.log, var/gpu-worker.log   Ctrl-C stops all.

MSG
# Stop everything as soon as the web server or the worker exits.
wait -n "$worker" "$web"
