#!/bin/bash
# Hot-path row 17 (docs/BENCHMARKS.md): WAL per task, insert + completion mark, with the message inline and with
# toast_tuple_target = 128 + STORAGE EXTERNAL, and with fillfactor 50 / 60. `bash bench/scenarios/task-toast.sh` (a scratch database on 127.0.0.1:5432).
set -e
P="psql -q -X -U postgres -h 127.0.0.1"
$P -c "DROP DATABASE IF EXISTS toastexp" postgres; $P -c "CREATE DATABASE toastexp" postgres
DDL="CREATE TABLE task (id bigserial PRIMARY KEY, user_id varchar(128) NOT NULL, topic varchar(64) NOT NULL, message_id varchar(128) NOT NULL UNIQUE, message jsonb NOT NULL, state varchar(16) NOT NULL DEFAULT 'create' CHECK (state IN ('create','completed','fail','dead')), attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz NOT NULL DEFAULT now(), last_error text, create_time timestamptz NOT NULL DEFAULT now(), update_time timestamptz NOT NULL DEFAULT now());
CREATE INDEX task_pending_idx ON task (next_attempt_at) WHERE state IN ('create','fail'); CREATE INDEX task_dead_idx ON task (id) WHERE state = 'dead';"
MSG='{"id":"partake.created:123456789012","data":{"orderId":"123456789012","userId":"user-000123","activityId":100301,"strategyId":100006,"orderTime":"2026-12-06T04:41:07.123Z"},"timestamp":1796531467123,"type":"partake.created","traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
for variant in inline external ff50 ff60; do
  $P toastexp -c "DROP TABLE IF EXISTS task; $DDL"
  if [ $variant = external ]; then $P toastexp -c "ALTER TABLE task SET (toast_tuple_target = 128); ALTER TABLE task ALTER COLUMN message SET STORAGE EXTERNAL"; fi
  if [ $variant = ff50 ]; then $P toastexp -c "ALTER TABLE task SET (fillfactor = 50)"; fi
  if [ $variant = ff60 ]; then $P toastexp -c "ALTER TABLE task SET (fillfactor = 60)"; fi
  $P toastexp -c "CHECKPOINT"
  for phase in insert complete; do
    a=$($P -t -A toastexp -c "SELECT pg_current_wal_insert_lsn()")
    if [ $phase = insert ]; then
      for i in $(seq 1 2000); do echo "INSERT INTO task (user_id, topic, message_id, message) VALUES ('user-000123', 'partake.created', 'partake.created:$i', '$MSG');"; done | $P toastexp
    else
      for i in $(seq 1 2000); do echo "UPDATE task SET state = 'completed', update_time = now() WHERE id = $i;"; done | $P toastexp
    fi
    b=$($P -t -A toastexp -c "SELECT pg_current_wal_insert_lsn()")
    echo "$variant $phase: $($P -t -A toastexp -c "SELECT round(pg_wal_lsn_diff('$b','$a')/2000.0)") bytes per task"
  done
done
$P -c "DROP DATABASE toastexp" postgres
