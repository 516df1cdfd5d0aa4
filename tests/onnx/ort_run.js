#!/usr/bin/env node
// Runs ONNX models in onnxruntime (the npm package onnxruntime-node, which scripts/setup.sh installs into
// <repo>/.cache/onnxruntime), for the tests that compare tapegrad's outputs with onnxruntime's.
//
//   node tests/onnx/ort_run.js MODEL.onnx IN.npy OUT.npy [--threads N]
//       feeds IN.npy (float32, C order) as the input "input", writes the output "logits" as float32 OUT.npy
//   node tests/onnx/ort_run.js --list LIST [--threads N]
//       the same for every line "MODEL<TAB>IN<TAB>OUT" of LIST, in one process (node starts once)
//   node tests/onnx/ort_run.js --bench MODEL.onnx --batch B --threads T --iters K [--warmup W] [--input CxHxW]
//       times K runs on one fixed batch of B inputs, after W warm-up runs (default 3; 50 at batch 1), and
//       prints one JSON object (scripts/bench.py --onnx reads it). The session: graphOptimizationLevel 'all',
//       intraOpNumThreads T, interOpNumThreads 1, sequential execution, and onnxruntime's spinning thread
//       pool as it ships (session.intra_op.allow_spinning = session.inter_op.allow_spinning = 1, the
//       defaults, set explicitly; with T = 1 there is no pool, the calling thread runs every kernel). Each
//       run is timed two ways, each over its own K runs:
//         "direct": the native binding's synchronous run(), what onnxruntime-node's API calls underneath
//                   (OrtRun plus wrapping the input and copying the output: the closest node gets to
//                   a C++ caller's Ort::Session::Run);
//         "api":    await session.run(feeds), the public promise API (adds a setImmediate hop and the
//                   promise's turn of the event loop).
//       Each: median_us, p99_us (the ceil(0.99 K)-th smallest), min_us, max_us, mean_us and images_per_s
//       (B x K / the K runs' total time). median_ms and images_per_second at the top level are "direct"'s
//       (images_per_second = B / median). The input size comes from the model's input (or --input).
//
// Where onnxruntime-node is: $TG_ORT_MODULES (a node_modules folder), else <repo>/.cache/onnxruntime/node_modules.
// Exit codes: 0 done, 1 a model failed to load or run, 2 bad arguments, 3 onnxruntime-node is absent.
'use strict';

const fs = require('fs');
const path = require('path');

function die(code, message) {
  process.stderr.write(`ort_run.js: ${message}\n`);
  process.exit(code);
}

function ortModules() {
  return process.env.TG_ORT_MODULES || path.join(__dirname, '..', '..', '.cache', 'onnxruntime', 'node_modules');
}

function ortDir() {
  return path.join(ortModules(), 'onnxruntime-node');
}

function loadOrt() {
  const modules = ortModules();
  const where = ortDir();
  if (!fs.existsSync(path.join(where, 'package.json'))) {
    die(3, `onnxruntime-node is not installed in ${modules}; run scripts/setup.sh (as root) to install it`);
  }
  try {
    return require(where);
  } catch (e) {
    die(3, `onnxruntime-node in ${modules} does not load (${e.message.split('\n')[0]}); run scripts/setup.sh`);
  }
}

// A float32 C-order .npy file: {shape, data}.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') die(1, `${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  if (!/'descr':\s*'<f4'/.test(header)) die(1, `${file}: expected float32 ('<f4'), header ${header.trim()}`);
  if (/'fortran_order':\s*True/.test(header)) die(1, `${file}: Fortran order is not supported`);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) die(1, `${file}: no shape in the header ${header.trim()}`);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  if (buf.length - offset !== count * 4) die(1, `${file}: ${buf.length - offset} data bytes for shape (${shape})`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = buf.readFloatLE(offset + 4 * i);
  return {shape, data};
}

function writeNpy(file, shape, data) {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // data 64-byte aligned, as numpy writes it
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; ++i) body.writeFloatLE(data[i], 4 * i);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), body]));
}

function sessionOptions(threads) {
  return {graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1};
}

async function runOne(ort, model, input, output, threads) {
  let session;
  try {
    session = await ort.InferenceSession.create(model, sessionOptions(threads));
  } catch (e) {
    die(1, `${model}: onnxruntime cannot load it: ${e.message}`);
  }
  const x = readNpy(input);
  let result;
  try {
    result = await session.run({input: new ort.Tensor('float32', x.data, x.shape)});
  } catch (e) {
    die(1, `${model}: onnxruntime failed on ${input} (shape [${x.shape}]): ${e.message}`);
  }
  const y = result.logits;
  if (!y) die(1, `${model}: no output named 'logits' (outputs: ${Object.keys(result).join(', ')})`);
  writeNpy(output, y.dims, y.data);
  await session.release();
}

// The benchmark's session: sessionOptions plus the thread pool's spinning stated explicitly (onnxruntime's
// defaults: workers spin while waiting for work before they sleep).
function benchOptions(threads) {
  return {
    ...sessionOptions(threads),
    executionMode: 'sequential',
    extra: {session: {intra_op: {allow_spinning: '1'}, inter_op: {allow_spinning: '1'}}},
  };
}

// The figures of K timings in microseconds (run `iters` times).
function stats(us, batch) {
  const total = us.reduce((a, b) => a + b, 0);
  us.sort((a, b) => a - b);
  const n = us.length;
  const median = n % 2 ? us[(n - 1) / 2] : (us[n / 2 - 1] + us[n / 2]) / 2;
  const round = (v) => Math.round(v * 100) / 100;
  return {
    median_us: round(median), p99_us: round(us[Math.max(0, Math.ceil(0.99 * n) - 1)]), min_us: round(us[0]),
    max_us: round(us[n - 1]), mean_us: round(total / n), images_per_s: Math.round(batch * n / (total / 1e6) * 10) / 10,
  };
}

async function bench(ort, model, batch, threads, iters, warmup, inputText) {
  const options = benchOptions(threads);
  const session = await ort.InferenceSession.create(model, options);
  let perExample;
  if (inputText) {
    perExample = inputText.split('x').map(Number);
  } else {
    const meta = session.inputMetadata && session.inputMetadata[0];
    if (!meta || !meta.shape) die(2, `${model}: the input's shape is unknown; pass --input CxHxW`);
    perExample = meta.shape.slice(1).map(Number);
    if (perExample.some((d) => !(d > 0))) die(2, `${model}: symbolic input sizes; pass --input CxHxW`);
  }
  const shape = [batch, ...perExample];
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; ++i) data[i] = Math.sin(i * 12.9898) * 0.5;  // fixed, not random
  const feeds = {input: new ort.Tensor('float32', data, shape)};
  const check = (out) => {
    if (!out || !out.logits) die(1, `${model}: no output named 'logits'`);
  };
  // One session at a time (each has its own thread pool): the API's first, then the binding's.
  for (let i = 0; i < warmup; ++i) check(await session.run(feeds));
  const api = [];
  for (let i = 0; i < iters; ++i) {
    const t0 = process.hrtime.bigint();
    const out = await session.run(feeds);
    api.push(Number(process.hrtime.bigint() - t0) / 1e3);
    check(out);
  }
  await session.release();

  // Then the native session under onnxruntime-node's API (dist/binding.js), loaded with the same options.
  const {binding, initOrt} = require(path.join(ortDir(), 'dist', 'binding'));
  initOrt();
  const native = new binding.InferenceSession();
  await native.loadModel(model, options);
  const fetches = {logits: null};
  for (let i = 0; i < warmup; ++i) check(native.run(feeds, fetches, {}));
  const direct = [];
  for (let i = 0; i < iters; ++i) {
    const t0 = process.hrtime.bigint();
    const out = native.run(feeds, fetches, {});
    direct.push(Number(process.hrtime.bigint() - t0) / 1e3);
    check(out);
  }
  native.dispose();

  const d = stats(direct, batch);
  const {extra, ...plain} = options;
  process.stdout.write(JSON.stringify({
    model, batch, threads, iters, warmup, input: shape,
    onnxruntime: ort.env.versions ? ort.env.versions.node : undefined,
    session: {...plain, 'session.intra_op.allow_spinning': extra.session.intra_op.allow_spinning,
              'session.inter_op.allow_spinning': extra.session.inter_op.allow_spinning},
    direct: d, api: stats(api, batch),
    median_ms: d.median_us / 1000, min_ms: d.min_us / 1000, max_ms: d.max_us / 1000,
    images_per_second: batch / (d.median_us / 1e6),
  }) + '\n');
}

function flag(args, name, fallback) {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  if (i + 1 >= args.length) die(2, `${name} needs a value`);
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
}

function positiveInt(text, name) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) die(2, `${name} must be a whole number >= 1, got '${text}'`);
  return n;
}

async function main() {
  const args = process.argv.slice(2);
  const usage = 'usage: ort_run.js MODEL.onnx IN.npy OUT.npy [--threads N] | --list LIST [--threads N] | ' +
                '--bench MODEL.onnx --batch B --threads T --iters K [--warmup W] [--input CxHxW]';
  const threads = positiveInt(flag(args, '--threads', '1'), '--threads');
  if (args[0] === '--bench') {
    const batch = positiveInt(flag(args, '--batch', '1'), '--batch');
    const iters = positiveInt(flag(args, '--iters', '20'), '--iters');
    const warmup = positiveInt(flag(args, '--warmup', batch === 1 ? '50' : '3'), '--warmup');
    const input = flag(args, '--input', '');
    if (args.length !== 2) die(2, usage);
    await bench(loadOrt(), args[1], batch, threads, iters, warmup, input);
  } else if (args[0] === '--list') {
    if (args.length !== 2) die(2, usage);
    const ort = loadOrt();
    const lines = fs.readFileSync(args[1], 'utf8').split('\n').filter((l) => l.trim().length > 0);
    for (const line of lines) {
      const parts = line.split('\t');
      if (parts.length !== 3) die(2, `${args[1]}: expected MODEL<TAB>IN<TAB>OUT, got '${line}'`);
      await runOne(ort, parts[0], parts[1], parts[2], threads);
    }
  } else {
    if (args.length !== 3) die(2, usage);
    await runOne(loadOrt(), args[0], args[1], args[2], threads);
  }
}

main().catch((e) => die(1, e.stack || String(e)));
