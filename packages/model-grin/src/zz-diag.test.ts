import { layerNorm, matmul, randn, softmax, silu, Generator, linear, cast, mul } from '@grin-moe/tensor';
import { it } from 'vitest';
it('diag', () => {
  const g = new Generator(1);
  const a = randn([7, 33], { dtype: 'f64', generator: g });
  const b = randn([33, 5], { dtype: 'f64', generator: g });
  const c = matmul(a, b).toArray();
  const A = a.toArray(), B = b.toArray();
  let e = 0;
  for (let i = 0; i < 7; i++) for (let j = 0; j < 5; j++) { let s = 0; for (let k = 0; k < 33; k++) s += A[i * 33 + k]! * B[k * 5 + j]!; e = Math.max(e, Math.abs(s - c[i * 5 + j]!)); }
  console.log('DIAG matmul f64 err', e, c.constructor.name);
  const w = randn([33], { dtype: 'f64', generator: g }); const bb = randn([33], { dtype: 'f64', generator: g });
  const y = layerNorm(a, w, bb, 1e-5).toArray(); const W = w.toArray(), Bb = bb.toArray();
  e = 0;
  for (let i = 0; i < 7; i++) { let m = 0; for (let k = 0; k < 33; k++) m += A[i*33+k]!; m /= 33; let v = 0; for (let k = 0; k < 33; k++) v += (A[i*33+k]!-m)**2; v /= 33; for (let k = 0; k < 33; k++) e = Math.max(e, Math.abs((A[i*33+k]!-m)/Math.sqrt(v+1e-5)*W[k]!+Bb[k]! - y[i*33+k]!)); }
  console.log('DIAG layernorm f64 err', e);
  const s = silu(a).toArray(); e = 0; for (let i = 0; i < A.length; i++) e = Math.max(e, Math.abs(A[i]!/(1+Math.exp(-A[i]!)) - s[i]!));
  console.log('DIAG silu f64 err', e);
  const sm = softmax(a, -1).toArray(); e = 0;
  for (let i = 0; i < 7; i++) { let mx = -Infinity; for (let k = 0; k < 33; k++) mx = Math.max(mx, A[i*33+k]!); let z = 0; for (let k = 0; k < 33; k++) z += Math.exp(A[i*33+k]!-mx); for (let k = 0; k < 33; k++) e = Math.max(e, Math.abs(Math.exp(A[i*33+k]!-mx)/z - sm[i*33+k]!)); }
  console.log('DIAG softmax f64 err', e);
  const l = linear(a, b.transpose(0,1)).toArray(); e = 0; for (let i = 0; i < c.length; i++) e = Math.max(e, Math.abs(l[i]! - c[i]!));
  console.log('DIAG linear f64 err', e);
});
