/**
 * On a machine with a Docker engine, TEST_CONTAINERS=1 starts PostgreSQL, RabbitMQ and Redis with
 * testcontainers instead of using local services. Loaded only then, so machines without Docker
 * never touch it.
 */
export type Services = Readonly<{ pg: string; amqp: string; redis: string; rabbitmqctl(args: string[]): Promise<void> }>;

export async function startContainers(): Promise<Services> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const [postgres, rabbit, redis] = await Promise.all([
    new GenericContainer('postgres:15')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start(),
    new GenericContainer('rabbitmq:3.13')
      .withExposedPorts(5672)
      .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
      .start(),
    new GenericContainer('redis:7').withExposedPorts(6379).start(),
  ]);
  return {
    pg: `postgres://postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}`,
    amqp: `amqp://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(5672)}`,
    redis: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
    async rabbitmqctl(args) {
      const r = await rabbit.exec(['rabbitmqctl', ...args]);
      if (r.exitCode !== 0) throw new Error(`rabbitmqctl ${args.join(' ')}: ${r.output}`);
    },
  };
}
