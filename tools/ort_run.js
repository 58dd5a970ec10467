#!/usr/bin/env node
// ONNX Runtime peer of `aciq run`: runs an ONNX model once on a float32 .npy input with the CPU EP and
// writes its first output as a float32 .npy; optionally times repeated runs (for scripts/zoo).
// Needs only node and onnxruntime-node from scripts/install-ort (no other npm packages).
//
//   node tools/ort_run.js --model M.onnx --input X.npy [--output Y.npy] [--threads 2]
//        [--repeat N (timed runs, default 0)] [--warmup W (default 1 when timing)]
//        [--opt-level all|extended|basic|disabled] [--json] [-v (ORT warnings)]
//
// The input must be a little-endian float32 ('<f4'), C-order .npy (version 1, 2 or 3); it feeds the
// model's first input (a model with more inputs is refused). The first output is converted to float32.
// stdout: one line "output NAME [dims] float32, median X ms (N runs)"; with --json a JSON object instead
// (output_name, output_shape, threads, runs, median_ms, min_ms, max_ms, samples_ms, session_ms, ort_version).
// onnxruntime-node is loaded from $ACIQ_ORT_DIR (default <repo>/.ort)/node_modules, else from node's
// normal resolution (NODE_PATH).
'use strict';
const fs = require('fs');
const path = require('path');

function die(msg) {
  process.stderr.write(`ort_run: error: ${msg}\n`);
  process.exit(1);
}

function usage(code) {
  const text = fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 16)
      .map((l) => l.replace(/^\/\/ ?/, '')).join('\n');
  (code ? process.stderr : process.stdout).write(text + '\n');
  process.exit(code);
}

function parseArgs(argv) {
  const o = {model: null, input: null, output: null, threads: 2, repeat: 0, warmup: null, optLevel: 'all',
    json: false, verbose: false};
  const valued = {'--model': 'model', '--input': 'input', '--output': 'output', '--threads': 'threads',
    '--repeat': 'repeat', '--warmup': 'warmup', '--opt-level': 'optLevel'};
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i], v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    if (a === '-h' || a === '--help') usage(0);
    else if (a === '--json') o.json = true;
    else if (a === '-v' || a === '--verbose') o.verbose = true;
    else if (valued[a]) {
      if (v === undefined) {
        if (i + 1 >= argv.length) die(`${a} needs a value`);
        v = argv[++i];
      }
      o[valued[a]] = v;
    } else die(`unknown option '${a}' (see --help)`);
  }
  if (!o.model) die('--model FILE is required');
  if (!o.input) die('--input FILE is required');
  if (o.warmup === null) o.warmup = Number(o.repeat) > 0 ? 1 : 0;
  for (const k of ['threads', 'repeat', 'warmup']) {
    const n = Number(o[k]);
    if (!Number.isInteger(n) || n < 0 || (k === 'threads' && n < 1)) die(`--${k}: bad value '${o[k]}'`);
    o[k] = n;
  }
  if (!['all', 'extended', 'basic', 'disabled', 'layout'].includes(o.optLevel)) die(`--opt-level: bad value '${o.optLevel}'`);
  return o;
}

// ---- .npy (https://numpy.org/devdocs/reference/generated/numpy.lib.format.html) ----

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    die(`${file}: not a .npy file`);
  }
  const major = buf.readUInt8(6);
  let hlen, hstart;
  if (major === 1) { hlen = buf.readUInt16LE(8); hstart = 10; }
  else if (major === 2 || major === 3) { hlen = buf.readUInt32LE(8); hstart = 12; }
  else die(`${file}: unsupported .npy version ${major}`);
  if (hstart + hlen > buf.length) die(`${file}: truncated header`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) die(`${file}: cannot parse header ${JSON.stringify(header)}`);
  if (descr[1] !== '<f4' && !(descr[1] === '=f4' && require('os').endianness() === 'LE')) {
    die(`${file}: dtype '${descr[1]}' is not little-endian float32 ('<f4')`);
  }
  if (fortran[1] !== 'False') die(`${file}: Fortran-order arrays are not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) die(`${file}: bad shape (${shape[1]})`);
  const count = dims.reduce((a, b) => a * b, 1);
  const off = hstart + hlen;
  if (buf.length - off < count * 4) die(`${file}: ${buf.length - off} data bytes, need ${count * 4}`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = buf.readFloatLE(off + 4 * i);
  return {dims, data};
}

function writeNpy(file, dims, data) {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], 4 * i);
  fs.mkdirSync(path.dirname(path.resolve(file)), {recursive: true});
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

// ---- onnxruntime-node (as tools/ort_eval.js loads it) ----

function loadOrt() {
  const dir = process.env.ACIQ_ORT_DIR ? path.resolve(process.env.ACIQ_ORT_DIR) : path.join(__dirname, '..', '.ort');
  const local = path.join(dir, 'node_modules', 'onnxruntime-node');
  try {
    return require(local);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND' || fs.existsSync(local)) throw e;
  }
  try {
    return require('onnxruntime-node');
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
    die(`onnxruntime-node not found in ${path.dirname(local)} nor via NODE_PATH; run scripts/install-ort`);
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.model)) die(`model '${o.model}' does not exist`);
  if (!fs.existsSync(o.input)) die(`input '${o.input}' does not exist`);
  const x = readNpy(o.input);
  const ort = loadOrt();
  const options = {executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: o.optLevel, logSeverityLevel: o.verbose ? 2 : 3};
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(o.model, options);
  const t1 = process.hrtime.bigint();
  if (session.inputNames.length !== 1) {
    die(`the model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); ort_run feeds exactly one`);
  }
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const feeds = {[inName]: new ort.Tensor('float32', x.data, x.dims)};

  const first = (await session.run(feeds))[outName];
  let samples = [];
  for (let i = 1; i < o.warmup; i++) await session.run(feeds);  // the first run counts as one warmup
  for (let i = 0; i < o.repeat; i++) {
    const s = process.hrtime.bigint();
    await session.run(feeds);
    samples.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  await session.release();

  const dims = first.dims.map(Number);
  let data = first.data;
  if (!(data instanceof Float32Array)) {
    if (typeof data[0] === 'bigint') data = Float32Array.from(data, (v) => Number(v));
    else if (first.type === 'string') die(`output '${outName}' is a string tensor`);
    else data = Float32Array.from(data);
  }
  if (o.output) writeNpy(o.output, dims, data);

  const r = {model: o.model, input: o.input, output: o.output, output_name: outName, output_type: first.type,
    output_shape: dims, threads: o.threads, graph_optimization_level: o.optLevel, runs: samples.length,
    median_ms: samples.length ? median(samples) : null,
    min_ms: samples.length ? Math.min(...samples) : null, max_ms: samples.length ? Math.max(...samples) : null,
    samples_ms: samples, session_ms: Number(t1 - t0) / 1e6,
    ort_version: ort.env && ort.env.versions ? ort.env.versions.common : undefined};
  if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
  else {
    const t = samples.length ? `, median ${r.median_ms.toFixed(3)} ms (${samples.length} runs)` : '';
    process.stdout.write(`output ${outName} [${dims.join(',')}] ${first.type}${t}\n`);
  }
}

if (require.main === module) {
  main().catch((e) => die(e && e.message ? e.message.split('\n')[0] : String(e)));
}
module.exports = {readNpy, writeNpy};
