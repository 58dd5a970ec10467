#!/usr/bin/env node
// ONNX Runtime judge: top-1/top-5 of an ONNX model (fp32 or QDQ-quantized) on Fashion-MNIST, scored by
// onnxruntime-node (CPU EP) with the same preprocessing and tie rule as `aciq eval`.
// Needs only node and onnxruntime-node from scripts/install-ort (no other npm packages).
//
//   node tools/ort_eval.js --model M.onnx [--data DIR|default|fashion-mnist[:DIR]|idx:IMAGES,LABELS]
//        [--split test|train] [--limit N] [--batch 256] [--threads 2] [--optimized-out FILE]
//        [--disable-qdq-fusion] [--opt-level all|extended|basic|disabled] [--dump-logits FILE]
//        [--json] [--json-out FILE] [-q] [-v (ORT warnings)]
//
// stdout: "N samples, X img/s", then " * Prec@1 X Prec@5 Y" (aciq's format); with --json, one more line
// holding a JSON object (samples, top1, top5, top1_correct, top5_correct, timings, and with
// --optimized-out the op-type counts of the model ORT saved). --dump-logits writes the raw float32
// logits (N x classes, little-endian, row-major). onnxruntime-node is loaded from $ACIQ_ORT_DIR
// (default <repo>/.ort)/node_modules, else from node's normal resolution (NODE_PATH).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const DEFAULT_DATA = '/usr/share/datasets/fashion-mnist';  // Debian dataset-fashion-mnist; aciq's default
const MEAN = Math.fround(0.2860), STD = Math.fround(0.3530);  // aciq fashion_mnist_normalization()

function die(msg) {
  process.stderr.write(`ort_eval: ${msg}\n`);
  process.exit(1);
}

function usage(code) {
  const text = fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 15)
      .map((l) => l.replace(/^\/\/ ?/, '')).join('\n');
  (code ? process.stderr : process.stdout).write(text + '\n');
  process.exit(code);
}

function parseArgs(argv) {
  const o = {model: null, data: 'default', split: 'test', limit: 0, batch: 256, threads: 2,
    optimizedOut: null, disableQdqFusion: false, optLevel: 'all', dumpLogits: null, json: false,
    jsonOut: null, quiet: false, verbose: false};
  const valued = {'--model': 'model', '--data': 'data', '--split': 'split', '--limit': 'limit',
    '--batch': 'batch', '--threads': 'threads', '--optimized-out': 'optimizedOut',
    '--opt-level': 'optLevel', '--dump-logits': 'dumpLogits', '--json-out': 'jsonOut'};
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i], v;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) { v = a.slice(eq + 1); a = a.slice(0, eq); }
    if (a === '-h' || a === '--help') usage(0);
    else if (a === '--json') o.json = true;
    else if (a === '--disable-qdq-fusion') o.disableQdqFusion = true;
    else if (a === '-q' || a === '--quiet') o.quiet = true;
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
  for (const k of ['limit', 'batch', 'threads']) {
    const n = Number(o[k]);
    if (!Number.isInteger(n) || n < 0 || (k !== 'limit' && n < 1)) die(`--${k}: bad value '${o[k]}'`);
    o[k] = n;
  }
  if (o.split !== 'test' && o.split !== 'train') die(`--split: expected test or train, got '${o.split}'`);
  if (!['all', 'extended', 'basic', 'disabled', 'layout'].includes(o.optLevel)) die(`--opt-level: bad value '${o.optLevel}'`);
  return o;
}

// ---- Fashion-MNIST IDX files (gzip or plain), as aciq's open_fashion_mnist / open_idx find them ----

function firstExisting(dir, stem) {
  for (const name of [stem + '.gz', stem]) {
    const p = path.join(dir, name);
    if (fs.existsSync(p) && fs.statSync(p).isFile()) return p;
  }
  die(`fashion-mnist: neither ${dir}/${stem}.gz nor ${dir}/${stem} exists`);
}

function readIdx(file, rank) {
  let buf = fs.readFileSync(file);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  if (buf.length < 4 + 4 * rank || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || buf[3] !== rank) {
    die(`${file}: not an IDX${rank} unsigned-byte file`);
  }
  const dims = [];
  for (let i = 0; i < rank; i++) dims.push(buf.readUInt32BE(4 + 4 * i));
  const off = 4 + 4 * rank, n = dims.reduce((a, b) => a * b, 1);
  if (buf.length < off + n) die(`${file}: truncated (${buf.length - off} of ${n} payload bytes)`);
  return {dims, data: buf.subarray(off, off + n)};
}

function openData(spec, split) {
  let images, labels, desc;
  if (spec.startsWith('idx:')) {
    const parts = spec.slice(4).split(',');
    if (parts.length !== 2) die(`--data '${spec}': expected idx:IMAGES,LABELS`);
    [images, labels] = parts;
    desc = `idx (${images}, ${labels})`;
  } else {
    let dir = spec;
    if (spec === 'default' || spec === 'fashion-mnist' || spec === '') dir = DEFAULT_DATA;
    else if (spec.startsWith('fashion-mnist:')) dir = spec.slice('fashion-mnist:'.length) || DEFAULT_DATA;
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
      die(`fashion-mnist: directory '${dir}' does not exist` +
          (dir === DEFAULT_DATA ? ' (install Debian package dataset-fashion-mnist: scripts/install-deps)' : ''));
    }
    const prefix = split === 'train' ? 'train' : 't10k';
    images = firstExisting(dir, `${prefix}-images-idx3-ubyte`);
    labels = firstExisting(dir, `${prefix}-labels-idx1-ubyte`);
    desc = `fashion-mnist ${split} (${dir})`;
  }
  const im = readIdx(images, 3), lb = readIdx(labels, 1);
  if (im.dims[0] !== lb.dims[0]) die(`${images} holds ${im.dims[0]} images but ${labels} ${lb.dims[0]} labels`);
  return {count: im.dims[0], rows: im.dims[1], cols: im.dims[2], pixels: im.data, labels: lb.data, desc};
}

// The same float32 operations and order as aciq's make_luts (ToTensor, then Normalize), hence bit-exact.
const LUT = new Float32Array(256);
for (let v = 0; v < 256; v++) LUT[v] = Math.fround(Math.fround(Math.fround(v / 255) - MEAN) / STD);

// ---- Minimal protobuf wire-format reader: op types of ModelProto.graph.node ----

function readVarint(buf, pos) {
  let value = 0, mul = 1, b;
  do {
    if (pos.p >= buf.length) throw new Error('truncated varint');
    b = buf[pos.p++];
    value += (b & 0x7f) * mul;
    mul *= 128;
  } while (b & 0x80);
  return value;
}

// Calls fn(field, wireType, pos) for each field of the message in buf[start, end); fn must consume
// length-delimited fields it handles by returning true, else the field is skipped here.
function forEachField(buf, start, end, fn) {
  const pos = {p: start};
  while (pos.p < end) {
    const key = readVarint(buf, pos);
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 2) {
      const len = readVarint(buf, pos);
      if (pos.p + len > end) throw new Error('truncated field');
      fn(field, wire, pos.p, pos.p + len);
      pos.p += len;
    } else if (wire === 0) readVarint(buf, pos);
    else if (wire === 1) pos.p += 8;
    else if (wire === 5) pos.p += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function countOps(file) {
  const buf = fs.readFileSync(file);
  const ops = {}, byDomain = {};
  let nodes = 0;
  forEachField(buf, 0, buf.length, (f, w, s, e) => {
    if (f !== 7) return;  // ModelProto.graph
    forEachField(buf, s, e, (gf, gw, gs, ge) => {
      if (gf !== 1) return;  // GraphProto.node
      let op = '', domain = '';
      forEachField(buf, gs, ge, (nf, nw, ns, ne) => {
        if (nf === 4) op = buf.toString('utf8', ns, ne);  // NodeProto.op_type
        else if (nf === 7) domain = buf.toString('utf8', ns, ne);  // NodeProto.domain
      });
      nodes++;
      ops[op] = (ops[op] || 0) + 1;
      const d = domain || 'ai.onnx';
      byDomain[d] = byDomain[d] || {};
      byDomain[d][op] = (byDomain[d][op] || 0) + 1;
    });
  });
  const sorted = (o) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  for (const d of Object.keys(byDomain)) byDomain[d] = sorted(byDomain[d]);
  return {nodes, ops: sorted(ops), byDomain: sorted(byDomain)};
}

// ---- onnxruntime-node ----

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

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.model)) die(`model '${o.model}' does not exist`);
  const ort = loadOrt();
  const t0 = process.hrtime.bigint();
  const ds = openData(o.data, o.split);
  const n = o.limit ? Math.min(o.limit, ds.count) : ds.count;
  const plane = ds.rows * ds.cols;
  const t1 = process.hrtime.bigint();

  const options = {executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: o.optLevel, logSeverityLevel: o.verbose ? 2 : 3};
  if (o.optimizedOut) {
    fs.mkdirSync(path.dirname(path.resolve(o.optimizedOut)), {recursive: true});
    options.optimizedModelFilePath = o.optimizedOut;
  }
  // Session config entry session.disable_quant_qdq=1: keep QDQ pairs as float DQ->op->Q instead of
  // fusing them into QLinear* / integer kernels.
  if (o.disableQdqFusion) options.extra = {session: {disable_quant_qdq: '1'}};
  const session = await ort.InferenceSession.create(o.model, options);
  const t2 = process.hrtime.bigint();
  const inName = session.inputNames[0], outName = session.outputNames[0];
  const meta = session.inputMetadata && session.inputMetadata[0];
  let batch = o.batch;
  if (meta && meta.isTensor && typeof meta.shape[0] === 'number' && meta.shape[0] > 0 && meta.shape[0] !== batch) {
    if (!o.quiet) process.stderr.write(`ort_eval: model input has fixed batch ${meta.shape[0]}; using it\n`);
    batch = meta.shape[0];
  }

  let top1 = 0, top5 = 0, classes = 0;
  const logitChunks = [];
  for (let b0 = 0; b0 < n; b0 += batch) {
    const bn = Math.min(batch, n - b0);
    // A fixed-batch model gets its last, short batch padded with zeros; the padding is not scored.
    const rows = meta && meta.isTensor && typeof meta.shape[0] === 'number' && meta.shape[0] > 0 ? batch : bn;
    const x = new Float32Array(rows * plane);
    const px = ds.pixels;
    for (let i = 0, base = b0 * plane, m = bn * plane; i < m; i++) x[i] = LUT[px[base + i]];
    const out = (await session.run({[inName]: new ort.Tensor('float32', x, [rows, 1, ds.rows, ds.cols])}))[outName];
    if (out.dims.length !== 2 || out.dims[0] !== rows) die(`model output of shape [${out.dims}] is not [batch, classes]`);
    classes = out.dims[1];
    const p = out.data instanceof Float32Array ? out.data : Float32Array.from(out.data);
    for (let i = 0; i < bn; i++) {
      const label = ds.labels[b0 + i];
      if (label >= classes) die(`label ${label} is outside the model's ${classes} classes`);
      const row = i * classes, ref = p[row + label];
      // Rank of the true class: classes scoring strictly higher, or equal with a lower index.
      let rank = 0;
      for (let c = 0; c < classes; c++) {
        const v = p[row + c];
        if (Number.isNaN(v)) die(`the model produced NaN logits (sample ${b0 + i})`);
        if (v > ref || (v === ref && c < label)) rank++;
      }
      if (rank < 1) top1++;
      if (rank < 5) top5++;
    }
    if (o.dumpLogits) logitChunks.push(Buffer.from(p.buffer, p.byteOffset, bn * classes * 4));
    if (!o.quiet && process.stderr.isTTY) process.stderr.write(`\r${b0 + bn}/${n}`);
  }
  const t3 = process.hrtime.bigint();
  if (!o.quiet && process.stderr.isTTY) process.stderr.write('\n');
  await session.release();
  if (o.dumpLogits) fs.writeFileSync(o.dumpLogits, Buffer.concat(logitChunks));

  const sec = (a, b) => Number(b - a) / 1e9;
  const pct = (k) => (n ? (100 * k) / n : 0);
  process.stdout.write(`${n} samples, ${(n / Math.max(sec(t2, t3), 1e-9)).toFixed(1)} img/s\n`);
  process.stdout.write(` * Prec@1 ${pct(top1).toFixed(3)} Prec@5 ${pct(top5).toFixed(3)}\n`);
  if (o.json || o.jsonOut) {
    const j = {model: o.model, data: ds.desc, samples: n, classes, top1: pct(top1), top5: pct(top5),
      top1_correct: top1, top5_correct: top5, batch, threads: o.threads, graph_optimization_level: o.optLevel,
      disable_qdq_fusion: o.disableQdqFusion, ort_version: ort.env && ort.env.versions ? ort.env.versions.common : undefined,
      seconds: {data: sec(t0, t1), session: sec(t1, t2), run: sec(t2, t3)}};
    if (o.optimizedOut) {
      const c = countOps(o.optimizedOut);
      Object.assign(j, {optimized_model: o.optimizedOut, optimized_nodes: c.nodes, optimized_ops: c.ops,
        optimized_ops_by_domain: c.byDomain});
    }
    if (o.json) process.stdout.write(JSON.stringify(j) + '\n');
    if (o.jsonOut) fs.writeFileSync(o.jsonOut, JSON.stringify(j, null, 1) + '\n');
  }
}

if (require.main === module) {
  main().catch((e) => die(e && e.message ? e.message : String(e)));
}
module.exports = {countOps, LUT};
