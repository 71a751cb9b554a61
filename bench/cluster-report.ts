import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeBetween } from './support';

/** One bench run in the cluster world with `instances` trees (each runs one instance of every worker). */
export type ClusterRow = Readonly<{
  instances: number;
  rechargePerSec: number;
  /** Committed effects per second on each of the 4 shards (shards 1, 3 on :5432; 2, 4 on the second server). */
  rechargePerShard: readonly number[];
  /** CPU % (100 = one core) per component while the recharges ran. */
  rechargeCpu: Record<string, number>;
  partakePerSec: number;
  partakeCpu: Record<string, number>;
}>;

const COMPONENTS = (r: ClusterRow) => Object.keys(r.rechargeCpu).filter((k) => k !== 'machine');
const n0 = (v: number) => String(Math.round(v));

/** The table (markdown) and the figure (SVG bars: partake and recharge per second, 1 vs 2 instances). */
export function clusterFigure(rows: readonly ClusterRow[]): { table: string; svg: string } {
  const comps = rows[0] ? COMPONENTS(rows[0]) : [];
  const table = [
    `| instances per worker | recharge /s | per shard /s (1 / 2 / 3 / 4) | partake+use /s | CPU % during recharge: ${comps.join(', ')}, machine | CPU % during partake: same order |`,
    '|---:|---:|---|---:|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.instances} | ${n0(r.rechargePerSec)} | ${r.rechargePerShard.map(n0).join(' / ')} | ${n0(r.partakePerSec)} | ${[...comps, 'machine'].map((k) => n0(r.rechargeCpu[k] ?? 0)).join(', ')} | ${[...comps, 'machine'].map((k) => n0(r.partakeCpu[k] ?? 0)).join(', ')} |`,
    ),
  ].join('\n');
  const W = 520;
  const H = 260;
  const max = Math.max(1, ...rows.flatMap((r) => [r.rechargePerSec, r.partakePerSec]));
  const bar = 60;
  const groups: Array<[string, (r: ClusterRow) => number]> = [
    ['recharge /s', (r) => r.rechargePerSec],
    ['partake+use /s', (r) => r.partakePerSec],
  ];
  const colors = ['#4e79a7', '#f28e2b'];
  const o: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`];
  o.push(`<text x="10" y="18" font-size="14">Cluster world: throughput with 1 and 2 instances per worker (${os.cpus().length} CPUs, everything on one machine)</text>`);
  groups.forEach(([label, v], g) => {
    const x0 = 60 + g * 230;
    rows.forEach((r, i) => {
      const h = (v(r) / max) * 170;
      const x = x0 + i * (bar + 20);
      o.push(`<rect x="${x}" y="${220 - h}" width="${bar}" height="${h}" fill="${colors[i % 2]}"/>`);
      o.push(`<text x="${x + bar / 2}" y="${214 - h}" text-anchor="middle">${n0(v(r))}</text>`);
      o.push(`<text x="${x + bar / 2}" y="236" text-anchor="middle">${r.instances} inst.</text>`);
    });
    o.push(`<text x="${x0 + bar + 10}" y="254" text-anchor="middle" font-weight="bold">${label}</text>`);
  });
  o.push('</svg>');
  return { table, svg: o.join('\n') };
}

const DOCS = path.resolve(import.meta.dirname, '../docs');
const BEGIN = '<!-- bench-cluster:begin (written by npm run bench -- --cluster) -->';
const END = '<!-- bench-cluster:end -->';

/** docs/benchmarks-cluster.{json,svg} and the table between the markers of docs/BENCHMARKS.md. */
export function writeClusterDocs(rows: readonly ClusterRow[], meta: Record<string, unknown>): void {
  const { table, svg } = clusterFigure(rows);
  fs.writeFileSync(path.join(DOCS, 'benchmarks-cluster.svg'), `${svg}\n`);
  fs.writeFileSync(path.join(DOCS, 'benchmarks-cluster.json'), `${JSON.stringify({ date: new Date().toISOString(), ...meta, loadavg: os.loadavg(), rows }, null, 2)}\n`);
  const body = `Run ${new Date().toISOString().slice(0, 16)}Z, \`${JSON.stringify(meta)}\`, load average at the end ${os
    .loadavg()
    .map((v) => v.toFixed(1))
    .join(' ')}.\n\n${table}\n\n![cluster throughput](benchmarks-cluster.svg)`;
  writeBetween(path.join(DOCS, 'BENCHMARKS.md'), BEGIN, END, body);
}
