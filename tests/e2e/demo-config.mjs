#!/usr/bin/env node
// Writes the plugin configuration `make demo` runs (the same one the end-to-end tests start from) to --out.
// Usage: node demo-config.mjs --proxy-url http://127.0.0.1:8080 --issuer http://127.0.0.1:8081 --client-id vigil
//          [--interval 10s] --out FILE

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { vigilConfig } from './lib/config.mjs';

const { values } = parseArgs({
  options: {
    'proxy-url': { type: 'string' },
    issuer: { type: 'string' },
    'client-id': { type: 'string', default: 'vigil' },
    interval: { type: 'string', default: '10s' },
    out: { type: 'string' },
  },
  strict: true,
});
for (const key of ['proxy-url', 'issuer', 'out']) {
  if (!values[key]) {
    console.error(`error: --${key} is required`);
    process.exit(2);
  }
}
const config = vigilConfig({
  proxyUrl: values['proxy-url'],
  issuer: values.issuer,
  clientId: values['client-id'],
  overrides: { revalidate_interval: values.interval, revalidate_timeout: '5s', max_staleness: '5m' },
});
writeFileSync(values.out, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
