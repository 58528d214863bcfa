// tfjs_run.js: runs a TF.js layers-model (e.g. an UpscalerJS ESRGAN package)
// in Node with the pure-JavaScript CPU backend, as UpscalerJS would.
//
//   node tfjs_run.js MODEL_DIR IN.f32 H W C OUT.f32 [REPEAT]
//
// IN.f32 holds H*W*C float32 values (HWC, already in the model's value
// range); OUT.f32 gets the model's output the same way (before any clamping
// or rounding). With REPEAT > 1 the model runs that many more times and the
// median seconds per run is printed as "seconds: S" (the first, warm-up run
// is not counted). NODE_PATH must reach @tensorflow/tfjs.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

// UpscalerJS's two custom layers, defined from their documented behaviour:
// MultiplyBeta multiplies by beta (0.2), PixelShuffleNx is depth-to-space
// in NHWC order with block N.
class MultiplyBeta extends tf.layers.Layer {
  constructor(config) { super(config || {}); this.beta = (config && config.beta) || 0.2; }
  call(inputs) { return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.beta); }
  static get className() { return 'MultiplyBeta'; }
}
tf.serialization.registerClass(MultiplyBeta);
for (const n of [2, 3, 4, 8]) {
  const cls = class extends tf.layers.Layer {
    constructor(config) { super(config || {}); this.block = n; }
    computeOutputShape(s) { return [s[0], s[1] && s[1] * n, s[2] && s[2] * n, s[3] / (n * n)]; }
    call(inputs) { return tf.depthToSpace(Array.isArray(inputs) ? inputs[0] : inputs, n, 'NHWC'); }
    static get className() { return `PixelShuffle${n}x`; }
  };
  tf.serialization.registerClass(cls);
}

// model.json and its shards read from disk: pure tfjs has no file:// loader.
function loadHandler(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = [], parts = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  const data = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData: data });
}

async function main() {
  const [dir, inFile, hs, ws, cs, outFile, reps] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const model = await tf.loadLayersModel(loadHandler(dir));
  const h = +hs, w = +ws, c = +cs;
  const buf = fs.readFileSync(inFile);
  const x = tf.tensor4d(new Float32Array(buf.buffer, buf.byteOffset, h * w * c), [1, h, w, c]);
  const y = model.predict(x);
  const out = await y.data();
  fs.writeFileSync(outFile, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  console.log(`output: ${y.shape.join('x')}`);
  y.dispose();
  const times = [];
  for (let i = 0; i < (+reps || 1) - 1; i++) {
    const t0 = process.hrtime.bigint();
    const yi = model.predict(x);
    await yi.data();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    yi.dispose();
  }
  if (times.length) {
    times.sort((a, b) => a - b);
    console.log(`seconds: ${times[Math.floor(times.length / 2)]}`);
  }
}
main().catch((e) => { console.error(`tfjs_run: ${e.message}`); process.exit(1); });
