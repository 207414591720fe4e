// ONNX Runtime (npm onnxruntime-node, CPU execution provider) on an ONNX file, for the
// comparison tables in bench/README.md. Prints one line in kiln_bench's format:
//
//   <label> infer batch=<N> image=<H> onnxruntime-<version>: median <s> s/run, <images/s> images/s
//
//   node bench/ort_bench.js MODEL.onnx LABEL --shape N,C,H,W [--threads 2] [--iters 20] [--warmup 3]
//
// The session: graphOptimizationLevel "all", intraOpNumThreads = --threads, interOpNumThreads
// 1, sequential execution; the input is uniform [0, 1) of the model's (fixed) input shape.
'use strict';
const path = require('path');

function requireOrt() {
  const roots = [process.env.KILN_ORT_DIR, path.join(__dirname, '..', 'out', 'ort')].filter(Boolean);
  for (const r of roots) {
    try {
      return {ort: require(path.join(r, 'node_modules', 'onnxruntime-node')),
              version: require(path.join(r, 'node_modules', 'onnxruntime-node', 'package.json')).version};
    } catch (e) { /* next */ }
  }
  throw new Error('onnxruntime-node not found (bench/zoo_bench.sh installs it into out/ort)');
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) throw new Error('usage: node bench/ort_bench.js MODEL.onnx LABEL [--threads N] [--iters N] [--warmup N]');
  const [file, label] = args;
  const opt = (name, def) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : def;
  };
  const threads = opt('--threads', 2), iters = opt('--iters', 20), warmup = opt('--warmup', 3);
  const {ort, version} = requireOrt();
  const session = await ort.InferenceSession.create(file, {
    graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential'});
  const name = session.inputNames[0];
  const si = args.indexOf('--shape');
  if (si < 0) throw new Error('--shape N,C,H,W is required');
  const dims = args[si + 1].split(',').map(Number);
  if (dims.length !== 4 || dims.some(d => !Number.isInteger(d) || d < 1)) throw new Error(`bad --shape ${args[si + 1]}`);
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = Math.random();
  const feeds = {[name]: new ort.Tensor('float32', data, dims)};
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < iters; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  const med = times.length % 2 ? times[(times.length - 1) / 2] : (times[times.length / 2 - 1] + times[times.length / 2]) / 2;
  console.log(`${label} infer batch=${dims[0]} image=${dims[2]} onnxruntime-${version}: median ${med.toFixed(6)} s/run, ` +
              `${(dims[0] / med).toFixed(0)} images/s`);
}

main().catch(e => { console.error(`ort_bench: ${e.message}`); process.exit(1); });
