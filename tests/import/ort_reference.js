// ONNX Runtime (npm onnxruntime-node, CPU) as the reference for kiln's ONNX import on
// models PyTorch does not write (tools/fuzz/seeds/onnx) and for kiln's ONNX export: runs
// the model on DIR/input.bin when it exists (else writes one, uniform [-1, 1), seeded),
// writes DIR/output.bin and DIR/shape.txt for tests/import/onnx_compare, and copies the
// model to DIR/model.onnx.
//
//   node tests/import/ort_reference.js MODEL.onnx N,C,H,W DIR
'use strict';
const fs = require('fs');
const path = require('path');

function requireOrt() {
  const roots = [process.env.KILN_ORT_DIR, path.join(__dirname, '..', '..', 'out', 'ort')].filter(Boolean);
  for (const r of roots) {
    try { return require(path.join(r, 'node_modules', 'onnxruntime-node')); } catch (e) { /* next */ }
  }
  throw new Error('onnxruntime-node not found (set KILN_ORT_DIR; tools/setup.sh installs it into out/ort)');
}

async function main() {
  const [model, shapeText, dir] = process.argv.slice(2);
  const ort = requireOrt();
  const dims = shapeText.split(',').map(Number);
  const n = dims.reduce((a, b) => a * b, 1);
  let data = new Float32Array(n);
  const given = path.join(dir, 'input.bin');
  if (fs.existsSync(given)) {  // an input written by the caller (tests/import/onnx_export_check)
    const b = fs.readFileSync(given);
    if (b.length !== n * 4) throw new Error(`${given} has ${b.length} bytes, the shape needs ${n * 4}`);
    data = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
  } else {
    let seed = 12345;
    for (let i = 0; i < n; ++i) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      data[i] = seed / 1073741824 - 1;
    }
  }
  const session = await ort.InferenceSession.create(model, {intraOpNumThreads: 1});
  const out = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', data, dims)});
  const y = out[session.outputNames[0]];
  fs.mkdirSync(dir, {recursive: true});
  if (path.resolve(model) !== path.resolve(path.join(dir, 'model.onnx'))) fs.copyFileSync(model, path.join(dir, 'model.onnx'));
  fs.writeFileSync(path.join(dir, 'input.bin'), Buffer.from(data.buffer));
  fs.writeFileSync(path.join(dir, 'output.bin'), Buffer.from(new Float32Array(y.data).buffer));
  fs.writeFileSync(path.join(dir, 'shape.txt'), dims.join(' ') + '\n' + y.dims.join(' ') + '\n');
}

main().catch(e => { console.error(`ort_reference: ${e.message}`); process.exit(1); });
