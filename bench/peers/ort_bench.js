// ONNX Runtime (onnxruntime-node, CPU) throughput on synthetic input: node ort_bench.js MODEL BATCH ITERS THREADS
const ort = require('onnxruntime-node');
(async () => {
  const [model, batch, iters, threads] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential'});
  const name = session.inputNames[0];
  const dims = process.argv[6].split('x').map(Number);
  dims[0] = batch;
  const data = new Float32Array(dims.reduce((a, b) => a * b));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 0.5;
  const x = new ort.Tensor('float32', data, dims);
  for (let i = 0; i < 2; i++) await session.run({[name]: x});
  const t = [];
  for (let i = 0; i < iters; i++) {
    const t0 = process.hrtime.bigint();
    await session.run({[name]: x});
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((a, b) => a - b);
  console.log(`throughput: ${(batch / t[Math.floor(t.length / 2)]).toFixed(2)} img/s`);
})().catch((e) => { console.error(e.message); process.exit(1); });
