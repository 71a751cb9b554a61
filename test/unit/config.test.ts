import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, effectiveSettings, initialLogLevel, loadConfig, processSwitches, workerEnv } from '../../infra/config';

test('defaults follow the contract', () => {
  const c = loadConfig({});
  assert.is(c.databaseUrl, 'postgres://postgres@127.0.0.1:5432/activity');
  assert.equal(c.shardUrls, ['postgres://postgres@127.0.0.1:5432/activity_01', 'postgres://postgres@127.0.0.1:5432/activity_02']);
  assert.is(c.shardTableCount, 4);
  assert.is(c.amqpUrl, 'amqp://guest:guest@127.0.0.1:5672');
  assert.is(c.redisUrl, 'redis://127.0.0.1:6379/0');
  assert.is(c.timeZone, 'UTC');
  assert.is(c.logLevel, 'info');
});

test('shard URLs default to the global database name plus _01, _02', () => {
  const c = loadConfig({ DATABASE_URL: 'postgres://u@db:5433/camp?sslmode=disable' });
  assert.equal(c.shardUrls, ['postgres://u@db:5433/camp_01?sslmode=disable', 'postgres://u@db:5433/camp_02?sslmode=disable']);
});

test('explicit shard list sets the shard count', () => {
  const c = loadConfig({ SHARD_DATABASE_URLS: 'postgres://h/a1, postgres://h/a2,postgres://h/a3,postgres://h/a4', SHARD_TABLE_COUNT: '2' });
  assert.is(c.shardUrls.length, 4);
  assert.is(c.shardUrls[1], 'postgres://h/a2');
});

function refuses(env: Record<string, string>, variable: string) {
  try {
    loadConfig(env);
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.ok((err as Error).message.startsWith(`${variable}:`), (err as Error).message);
    return;
  }
  assert.unreachable(`${JSON.stringify(env)} was accepted`);
}

test('a wrong value names its variable', () => {
  refuses({ SHARD_TABLE_COUNT: '3' }, 'SHARD_TABLE_COUNT'); // 2 x 3 is not a power of two
  refuses({ SHARD_TABLE_COUNT: 'four' }, 'SHARD_TABLE_COUNT');
  refuses({ DATABASE_URL: 'mysql://h/x' }, 'DATABASE_URL');
  refuses({ DATABASE_URL: 'postgres://h' }, 'DATABASE_URL');
  refuses({ SHARD_DATABASE_URLS: 'postgres://h/a,not a url' }, 'SHARD_DATABASE_URLS (entry 2)');
  refuses({ AMQP_URL: 'http://x' }, 'AMQP_URL');
  refuses({ REDIS_URL: '127.0.0.1:6379' }, 'REDIS_URL');
  refuses({ ACTIVITY_TIME_ZONE: 'Mars/Olympus' }, 'ACTIVITY_TIME_ZONE');
  refuses({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
  refuses({ DELIVERY_LIMIT: '0' }, 'DELIVERY_LIMIT');
  refuses({ GROUP_COMMIT_MAX: '0' }, 'GROUP_COMMIT_MAX');
  refuses({ GROUP_COMMIT_LANES: '4', DB_POOL_SIZE: '3' }, 'GROUP_COMMIT_LANES'); // each lane holds a connection
  refuses({ REDIS_CLUSTER_NODES: '127.0.0.1:7101,127.0.0.1' }, 'REDIS_CLUSTER_NODES');
  refuses({ REDIS_CLUSTER_NODES: '127.0.0.1:70000' }, 'REDIS_CLUSTER_NODES');
  refuses({ REDIS_CLUSTER_NODES: 'redis://h:7000/3' }, 'REDIS_CLUSTER_NODES'); // a cluster has no db index
  refuses({ REDIS_CLUSTER_NODES: 'http://h:7000' }, 'REDIS_CLUSTER_NODES');
  refuses({ REDIS_CLUSTER_NODES: 'h:7000', REDIS_URL: 'redis://h:6379/0' }, 'REDIS_CLUSTER_NODES');
  refuses({ REDIS_KEY_PREFIX: 'a{b}:' }, 'REDIS_KEY_PREFIX'); // would change every key's hash tag
  refuses({ REDIS_WAIT_TIMEOUT_MS: '0' }, 'REDIS_WAIT_TIMEOUT_MS'); // WAIT 0 would block forever
});

test('Redis: one server by default; REDIS_CLUSTER_NODES turns cluster mode on, where takes wait for a replica', () => {
  const single = loadConfig({});
  assert.is(single.redisCluster, undefined);
  assert.equal([single.redisWaitReplicas, single.redisKeyPrefix], [0, '']);
  const c = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002', REDIS_KEY_PREFIX: 'camp-a:' });
  assert.equal(c.redisCluster, {
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ],
    tls: false,
  });
  assert.equal([c.redisWaitReplicas, c.redisWaitTimeoutMs, c.redisKeyPrefix], [1, 1000, 'camp-a:']);
  assert.is(loadConfig({ REDIS_CLUSTER_NODES: 'h:7000', REDIS_WAIT_REPLICAS: '0' }).redisWaitReplicas, 0);
  const auth = loadConfig({ REDIS_CLUSTER_NODES: 'rediss://app:s%40cret@h1:7000,h2:7001' }).redisCluster!;
  assert.equal(auth, {
    nodes: [
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
    ],
    username: 'app',
    password: 's@cret',
    tls: true,
  });
});

test('group commit: 16 messages per transaction and 2 lanes by default; 1 turns grouping off', () => {
  const c = loadConfig({});
  assert.equal([c.groupMax, c.groupLanes, c.groupStallMs], [16, 2, 3_000]);
  assert.is(loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '500' }).groupStallMs, 1_500, 'default: the Redis wait + 1 s');
  assert.is(loadConfig({ GROUP_COMMIT_STALL_MS: '0' }).groupStallMs, 0);
  assert.throws(() => loadConfig({ GROUP_COMMIT_STALL_MS: '1500' }), /GROUP_COMMIT_STALL_MS: 1500 must be 0 or more than the 2000 ms a stock take may wait for Redis/);
  assert.equal([loadConfig({ GROUP_COMMIT_MAX: '1' }).groupMax, loadConfig({ GROUP_COMMIT_LANES: '3', DB_POOL_SIZE: '3' }).groupLanes], [1, 3]);
});

test('a broker cluster: AMQP_URL as a comma list, every entry checked', () => {
  const c = loadConfig({ AMQP_URL: 'amqp://u:p@n1:5672/v, amqp://u:p@n2:5673/v' });
  assert.equal(c.amqpUrls, ['amqp://u:p@n1:5672/v', 'amqp://u:p@n2:5673/v']);
  assert.is(c.amqpUrl, 'amqp://u:p@n1:5672/v');
  refuses({ AMQP_URL: 'amqp://n1:5672,http://n2' }, 'AMQP_URL (entry 2)');
});

test('bounded waits and outage handling have defaults and bounds', () => {
  const c = loadConfig({});
  assert.equal(
    [c.amqpHeartbeatSeconds, c.dbStatementTimeoutMs, c.dbConnectTimeoutMs, c.redisCommandTimeoutMs, c.outageHold, c.parkMs, c.quorumInitialGroupSize],
    [5, 5_000, 5_000, 2_000, 2, 5_000, 0],
  );
  refuses({ AMQP_HEARTBEAT_SECONDS: '0' }, 'AMQP_HEARTBEAT_SECONDS');
  refuses({ PARK_MS: '5' }, 'PARK_MS');
  refuses({ OUTAGE_HOLD: '-1' }, 'OUTAGE_HOLD');
});

test('OTLP traces URL: the per-signal endpoint as is, else the base + /v1/traces; unset: no tracing; not http: named', () => {
  assert.is(loadConfig({}).otlpTracesUrl, undefined);
  assert.is(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).otlpTracesUrl, 'http://collector:4318/v1/traces');
  assert.is(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t:443/x' }).otlpTracesUrl, 'https://t:443/x');
  assert.is(loadConfig({ OTEL_SERVICE_NAME: ' billing ' }).otelServiceName, 'billing');
  const shown = JSON.stringify(effectiveSettings(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://u:tok3n@c:4318' })));
  assert.not.ok(shown.includes('tok3n'), shown);
  try {
    loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://c:4317', PREFETCH: '0' });
  } catch (err) {
    assert.equal(
      (err as ConfigError).problems.map((p) => p.split(':')[0]),
      ['PREFETCH', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    );
    return;
  }
  assert.unreachable('a grpc:// endpoint was accepted');
});

test('every wrong setting is reported at once, one line each, in the order read', () => {
  try {
    loadConfig({ DATABASE_URL: 'mysql://h/x', PREFETCH: 'many', LOG_LEVEL: 'loud', CALL_TIMEOUT_MS: '-1' });
  } catch (err) {
    assert.instance(err, ConfigError);
    const problems = (err as ConfigError).problems;
    assert.equal(
      problems.map((p) => p.split(':')[0]),
      ['DATABASE_URL', 'LOG_LEVEL', 'PREFETCH', 'CALL_TIMEOUT_MS'],
    );
    assert.is((err as Error).message.split('\n').length, 4);
    return;
  }
  assert.unreachable('wrong settings were accepted');
});

test('effective settings mask every password and keep the rest', () => {
  const c = loadConfig({
    DATABASE_URL: 'postgres://app:s3cret@db:5432/camp',
    AMQP_URL: 'amqp://u:hunter2@n1:5672,amqp://u:hunter2@n2:5672',
    REDIS_CLUSTER_NODES: 'redis://app:pw@h1:7000,h2:7001',
  });
  const shown = JSON.stringify(effectiveSettings(c));
  for (const secret of ['s3cret', 'hunter2', ':pw@', '"pw"']) assert.not.ok(shown.includes(secret), `${secret} shown in ${shown}`);
  assert.ok(shown.includes('postgres://app:***@db:5432/camp'), shown);
  assert.is(effectiveSettings(c).prefetch, 32);
  assert.is(c.callTimeoutMs, 10_000);
});

test('outbox relay and retention settings (OUTBOX_*, RETENTION_SECONDS) are read and checked with the others', () => {
  assert.equal(loadConfig({}).outbox, { maxAttempts: 10, backoffMs: 1000, backoffMaxMs: 300000, leaseMs: 30000, batchSize: 100, retentionSeconds: 7 * 86_400 });
  assert.equal(loadConfig({ OUTBOX_MAX_ATTEMPTS: '3', OUTBOX_LEASE_MS: '5000', RETENTION_SECONDS: '120' }).outbox, {
    maxAttempts: 3,
    backoffMs: 1000,
    backoffMaxMs: 300000,
    leaseMs: 5000,
    batchSize: 100,
    retentionSeconds: 120,
  });
  refuses({ OUTBOX_LEASE_MS: '4999' }, 'OUTBOX_LEASE_MS'); // shorter than a publish may take
  refuses({ OUTBOX_BATCH: 'ten' }, 'OUTBOX_BATCH');
  refuses({ RETENTION_SECONDS: '5' }, 'RETENTION_SECONDS'); // under 10 s would race the relay's own marking
});

test('the switches read before or beside the configuration: root log level, probation, the worker environment', () => {
  assert.equal([initialLogLevel({}), initialLogLevel({ LOG_LEVEL: 'debug' }), initialLogLevel({ LOG_LEVEL: 'loud' })], ['info', 'debug', 'info']);
  assert.equal([processSwitches({}).probation, processSwitches({ AQ_PROBATION: '1' }).probation, processSwitches({ AQ_CRASH_AT: ' x ' }).crashAt], [false, true, 'x']);
  assert.equal(workerEnv(true, { A: '1' }), { A: '1', AQ_PROBATION: '1' });
  assert.equal(workerEnv(false, { A: '1' }), { A: '1' });
});

test.run();
