// node-postgres' workload through a pooler, for tests/it/drivers.rs.
//
// Usage: node node_driver.js node-postgres MODE   (with `pg` on NODE_PATH)
//
// MODE:
//   snippet  run the settings snippet poolwright printed (env
//            POOLWRIGHT_SNIPPET) to get the `pool` it defines; a snippet with
//            no code means the driver needs nothing: connect the default way.
//   plain    a pg.Client per connection with the URL alone (library defaults:
//            queries without a `name` use the unnamed statement).
//   named    plain, but every query gets a `name`: a named prepared statement,
//            which the node-postgres snippet says to avoid without a pooler
//            that tracks them.
//
// Environment: DATABASE_URL (the URL poolwright printed, which the snippet
// reads), POOLWRIGHT_SNIPPET, CLIENTS (default 6), ROUNDS (default 40),
// CHURN (default 110).
//
// The workload is python_driver.py's: CLIENTS concurrent connections, each
// running the same parameterised SELECT ROUNDS times, each in its own
// transaction (every other one explicit); client 0 first runs CHURN distinct
// statements 7 times each. Prints `LIB <versions>`, then `OK <statements>` and
// exits 0; on the first error prints `ERROR <type>: <message>` and exits 1.

'use strict';

const pg = require('pg');

const [driver, mode] = process.argv.slice(2);
const url = process.env.DATABASE_URL;
const snippet = process.env.POOLWRIGHT_SNIPPET || '';
const clients = Number(process.env.CLIENTS || 6);
const rounds = Number(process.env.ROUNDS || 40);
const churn = Number(process.env.CHURN || 110);
const churnRepeat = 7;

// A hung run (a pool that never frees a connection) must not hang the test.
setTimeout(() => {
  console.log('ERROR Timeout: no result after 60 s');
  process.exit(1);
}, 60_000).unref();

/** False for an empty or comments-only snippet: the driver needs nothing. */
function snippetHasCode() {
  const code = snippet.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  return code.trim() !== '';
}

/** Runs the snippet as the body of an async function (so top-level `await`
 * works) with what it assumes in scope, and returns the `pool` it defines. */
async function poolFromSnippet() {
  const AsyncFunction = (async () => {}).constructor;
  const body = `${snippet}\nreturn typeof pool === 'undefined' ? undefined : pool;`;
  const pool = await new AsyncFunction('pg', 'process', 'require', body)(pg, process, require);
  if (pool === undefined) throw new Error(`the snippet defines no \`pool\`:\n${snippet}`);
  return pool;
}

// A name per distinct statement, as an app names its queries (`named` mode).
const names = new Map();
function nameOf(text) {
  if (!names.has(text)) names.set(text, `q${names.size}`);
  return names.get(text);
}

/** Client k's statements: [sql, value, expected] (see python_driver.py). */
function* statements(k) {
  if (k === 0) {
    for (let n = 0; n < churn; n++) {
      for (let r = 0; r < churnRepeat; r++) yield [`SELECT $1::int + ${n + 2} AS v`, k, k + n + 2];
    }
  }
  for (let i = 0; i < rounds; i++) {
    const value = k * 1000 + i;
    yield ['SELECT $1::int + 1 AS v', value, value + 1];
  }
}

async function work(k, connect, named) {
  const client = await connect();
  let n = 0;
  try {
    let i = 0;
    for (const [text, value, want] of statements(k)) {
      const query = named ? { name: nameOf(text), text, values: [value] } : { text, values: [value] };
      const explicit = i++ % 2 === 0;
      if (explicit) await client.query('BEGIN');
      const got = (await client.query(query)).rows[0].v;
      if (explicit) await client.query('COMMIT');
      if (got !== want) throw new Error(`query returned ${got}, expected ${want}`);
      n++;
    }
    return n;
  } finally {
    // A pool's client goes back to the pool; a plain one is closed.
    if (typeof client.release === 'function') client.release();
    else await client.end();
  }
}

async function main() {
  const version = require('pg/package.json').version;
  console.log(`LIB node ${process.version}, pg ${version}`);
  if (driver !== 'node-postgres') throw new Error(`unknown driver ${driver}`);
  if (!['snippet', 'plain', 'named'].includes(mode)) throw new Error(`unknown mode ${mode}`);
  let pool;
  let connect;
  if (mode === 'snippet' && snippetHasCode()) {
    pool = await poolFromSnippet();
    connect = () => pool.connect();
  } else {
    connect = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return client;
    };
  }
  try {
    const counts = await Promise.all([...Array(clients).keys()].map((k) => work(k, connect, mode === 'named')));
    console.log(`OK ${counts.reduce((a, b) => a + b, 0)}`);
  } finally {
    if (pool) await pool.end();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    console.log(`ERROR ${e.constructor.name}: ${String(e.message).split(/\s+/).join(' ')}`);
    process.exit(1);
  },
);
