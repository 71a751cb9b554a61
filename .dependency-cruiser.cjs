/** Import rules checked in CI (`npm run check:imports`): the layout of docs/DESIGN.md, enforced. */
module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment: 'domain/ holds pure decisions: it imports nothing outside domain/ (no infra, no workers, no packages).',
      severity: 'error',
      from: { path: '^domain/' },
      to: { pathNot: '^domain/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'domain-no-node',
      comment: 'domain/ does no IO: not even node built-ins.',
      severity: 'error',
      from: { path: '^domain/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'infra-not-workers',
      comment: 'infra/ is below the workers: it never imports from workers/.',
      severity: 'error',
      from: { path: '^infra/' },
      to: { path: '^workers/' },
    },
    {
      name: 'production-not-tests',
      comment: 'Production code never imports test or bench code.',
      severity: 'error',
      from: { path: '^(domain|infra|workers)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'no-circular',
      comment: 'No import circles (type-only imports included).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'typeorm-in-db-only',
      comment: 'typeorm runs the migrations behind infra/db.ts; nothing else imports it.',
      severity: 'error',
      from: { pathNot: '^infra/db\\.ts$' },
      to: { path: 'node_modules/typeorm' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|dist)/' },
  },
};
