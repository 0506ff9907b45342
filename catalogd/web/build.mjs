// build.mjs bundles the web player: src/ → dist/index.html and
// dist/assets/NAME-HASH.EXT (see web.go).
//
//   node build.mjs           rebuild dist/
//   node build.mjs --check   fail when dist/ differs from what src/ builds
//   node build.mjs --out D   build into D instead of dist/
//
// The output depends only on src/ and the locked packages, so --check is
// exact.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const check = args.includes('--check');
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 ? path.resolve(args[outIdx + 1]) : path.join(here, 'dist');

// bundle returns the built files as a map of path (relative to dist) to
// contents.
async function bundle() {
  const files = new Map();
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: { app: 'src/app.js', style: 'src/style.css' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    entryNames: '[name]-[hash]',
    outdir: 'dist/assets',
    legalComments: 'eof',
    write: false,
    metafile: true,
    logLevel: 'warning',
  });
  const names = {};
  for (const f of result.outputFiles) {
    const rel = path.relative(path.join(here, 'dist'), f.path);
    files.set(rel, Buffer.from(f.contents));
    names[path.basename(rel).replace(/-[A-Z0-9]{8}\./, '.')] = '/' + rel;
  }
  for (const name of ['icon.svg']) {
    const data = await readFile(path.join(here, 'src', name));
    const hash = createHash('sha256').update(data).digest('hex').slice(0, 8).toUpperCase();
    const ext = path.extname(name);
    const rel = `assets/${path.basename(name, ext)}-${hash}${ext}`;
    files.set(rel, data);
    names[name] = '/' + rel;
  }
  let html = await readFile(path.join(here, 'src', 'index.html'), 'utf8');
  html = html.replace(/\{\{([a-z.]+)\}\}/g, (m, name) => {
    if (!names[name]) throw new Error(`src/index.html: no asset ${name}`);
    return names[name];
  });
  files.set('index.html', Buffer.from(html));
  return files;
}

async function listFiles(dir, prefix = '') {
  const got = new Map();
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return got;
    throw err;
  }
  for (const e of entries) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) {
      for (const [k, v] of await listFiles(path.join(dir, e.name), rel)) got.set(k, v);
    } else {
      got.set(rel, await readFile(path.join(dir, e.name)));
    }
  }
  return got;
}

const files = await bundle();
if (check) {
  const have = await listFiles(out);
  const problems = [];
  for (const [name, data] of files) {
    if (!have.has(name)) problems.push(`missing ${name}`);
    else if (!have.get(name).equals(data)) problems.push(`differs ${name}`);
  }
  for (const name of have.keys()) if (!files.has(name)) problems.push(`extra ${name}`);
  if (problems.length) {
    console.error(`catalogd/web/dist is not what src/ builds (${problems.join(', ')}): run \`make web\` and commit dist/`);
    process.exit(1);
  }
  console.log('catalogd/web/dist is up to date');
} else {
  await rm(out, { recursive: true, force: true });
  for (const [name, data] of files) {
    await mkdir(path.dirname(path.join(out, name)), { recursive: true });
    await writeFile(path.join(out, name), data);
  }
  let total = 0;
  for (const [name, data] of files) {
    total += data.length;
    console.log(`${name.padEnd(40)} ${(data.length / 1024).toFixed(1)} KiB`);
  }
  console.log(`${'total'.padEnd(40)} ${(total / 1024).toFixed(1)} KiB`);
}
