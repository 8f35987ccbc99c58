#!/usr/bin/env bash
# usage: run-until-stdin-closes.sh DIR LOG CMD...
# Runs CMD (wrangler dev, which starts workerd) in its own process group with output to LOG.
# A line "restart" on stdin kills the group with SIGKILL (a crash, not a clean stop) and starts
# CMD again on the same persistence folder. When stdin closes (the test process dropped its
# handle, exited, panicked or was killed) it kills the whole group and removes DIR, so no test
# leaves a process or a state folder behind.
set -m
dir=$1 log=$2
shift 2

start() {
  "$@" </dev/null >>"$log" 2>&1 &
  child=$!
}

stop() {
  local signal=$1
  kill "-$signal" -- "-$child" 2>/dev/null
  for _ in $(seq 30); do
    kill -0 -- "-$child" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$child" 2>/dev/null
  wait "$child" 2>/dev/null
}

start "$@"
while IFS= read -r line; do
  if [[ $line == restart ]]; then
    stop KILL
    start "$@"
  fi
done
stop TERM
rm -rf -- "$dir"
