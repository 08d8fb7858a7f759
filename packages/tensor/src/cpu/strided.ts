// Fast strided iteration for CPU kernels. Axes that are laid out alike in every operand are
// merged first, so a broadcast bias add or a transposed copy becomes a few long rows; the kernel
// then runs a tight loop per row with one stride per operand. Loops are generated once per
// expression (new Function) so each is monomorphic instead of calling a closure per element.
// Test: cd packages/tensor && npx vitest run src/ops
export interface Rows {
  /** Outer (row) shape after merging; the inner axis is `inner` long. */
  outer: number[];
  inner: number;
  /** Per operand: strides of the outer axes, and the stride along the inner axis. */
  outerStrides: number[][];
  innerStride: number[];
}

/**
 * Merges axes of `shape` that are contiguous with their neighbour in every operand and drops
 * size-1 axes: the layout every backend's strided kernels iterate over.
 */
export function mergeLayout(
  shape: readonly number[],
  strides: ReadonlyArray<readonly number[]>,
): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, k) => st[k]![last] === s[i]! * d)) {
      dims[last]! *= d;
      strides.forEach((s, k) => {
        st[k]![last] = s[i]!;
      });
    } else {
      dims.push(d);
      strides.forEach((s, k) => st[k]!.push(s[i]!));
    }
  }
  return { shape: dims, strides: st };
}

/** mergeLayout, split into outer rows and one inner axis for row loops. */
export function mergeAxes(shape: readonly number[], strides: ReadonlyArray<readonly number[]>): Rows {
  const { shape: dims, strides: st } = mergeLayout(shape, strides);
  if (dims.length === 0)
    return { outer: [], inner: 1, outerStrides: strides.map(() => []), innerStride: strides.map(() => 0) };
  const inner = dims.pop()!;
  return {
    outer: dims,
    inner,
    outerStrides: st.map((s) => s.slice(0, -1)),
    innerStride: st.map((s) => s[s.length - 1]!),
  };
}

/** Calls visit(bases) for every row, bases[k] = the offset of operand k at the row start. */
export function forEachRow(rows: Rows, offsets: readonly number[], visit: (bases: number[]) => void): void {
  const { outer, outerStrides } = rows;
  const rank = outer.length;
  const bases = [...offsets];
  if (rank === 0) {
    visit(bases);
    return;
  }
  const total = outer.reduce((a, b) => a * b, 1);
  const index = new Array<number>(rank).fill(0);
  for (let r = 0; r < total; r++) {
    visit(bases);
    for (let axis = rank - 1; axis >= 0; axis--) {
      index[axis]!++;
      for (let k = 0; k < bases.length; k++) bases[k]! += outerStrides[k]![axis]!;
      if (index[axis]! < outer[axis]!) break;
      for (let k = 0; k < bases.length; k++) bases[k]! -= outerStrides[k]![axis]! * outer[axis]!;
      index[axis] = 0;
    }
  }
}

type Arr = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array;
export type RowLoop2 = (d: Arr, x: Arr, od: number, ox: number, n: number, sd: number, sx: number) => void;
export type RowLoop3 = (
  d: Arr,
  x: Arr,
  y: Arr,
  od: number,
  ox: number,
  oy: number,
  n: number,
  sd: number,
  sx: number,
  sy: number,
) => void;

const cache2 = new Map<string, RowLoop2>();
const cache3 = new Map<string, RowLoop3>();

/** d[od + i*sd] = EXPR(a) with a = x[ox + i*sx]. */
export function rowLoop2(expr: string): RowLoop2 {
  let fn = cache2.get(expr);
  if (!fn) {
    fn = new Function(
      'd',
      'x',
      'od',
      'ox',
      'n',
      'sd',
      'sx',
      `if (sd === 1 && sx === 1) { for (let i = 0; i < n; i++) { const a = x[ox + i]; d[od + i] = ${expr}; } return; }
       for (let i = 0; i < n; i++, od += sd, ox += sx) { const a = x[ox]; d[od] = ${expr}; }`,
    ) as RowLoop2;
    cache2.set(expr, fn);
  }
  return fn;
}

/** d[od + i*sd] = EXPR(a, b) with a = x[ox + i*sx], b = y[oy + i*sy]. */
export function rowLoop3(expr: string): RowLoop3 {
  let fn = cache3.get(expr);
  if (!fn) {
    fn = new Function(
      'd',
      'x',
      'y',
      'od',
      'ox',
      'oy',
      'n',
      'sd',
      'sx',
      'sy',
      `if (sd === 1 && sx === 1 && sy === 1) { for (let i = 0; i < n; i++) { const a = x[ox + i], b = y[oy + i]; d[od + i] = ${expr}; } return; }
       if (sd === 1 && sx === 1 && sy === 0) { const b = y[oy]; for (let i = 0; i < n; i++) { const a = x[ox + i]; d[od + i] = ${expr}; } return; }
       if (sd === 1 && sx === 0 && sy === 1) { const a = x[ox]; for (let i = 0; i < n; i++) { const b = y[oy + i]; d[od + i] = ${expr}; } return; }
       for (let i = 0; i < n; i++, od += sd, ox += sx, oy += sy) { const a = x[ox], b = y[oy]; d[od] = ${expr}; }`,
    ) as RowLoop3;
    cache3.set(expr, fn);
  }
  return fn;
}

/** out (contiguous, `shape`) = EXPR over one strided input. */
export function mapStrided(
  expr: string,
  out: Arr,
  shape: readonly number[],
  x: Arr,
  xStrides: readonly number[],
  xOffset: number,
  outOffset = 0,
): void {
  const outStrides = contiguous(shape);
  const rows = mergeAxes(shape, [outStrides, xStrides]);
  const loop = rowLoop2(expr);
  const [sd, sx] = rows.innerStride as [number, number];
  forEachRow(rows, [outOffset, xOffset], (b) => loop(out, x, b[0]!, b[1]!, rows.inner, sd, sx));
}

/** out (contiguous, `shape`) = EXPR over two strided (broadcast) inputs. */
export function zipStrided(
  expr: string,
  out: Arr,
  shape: readonly number[],
  x: Arr,
  xStrides: readonly number[],
  xOffset: number,
  y: Arr,
  yStrides: readonly number[],
  yOffset: number,
): void {
  const rows = mergeAxes(shape, [contiguous(shape), xStrides, yStrides]);
  const loop = rowLoop3(expr);
  const [sd, sx, sy] = rows.innerStride as [number, number, number];
  forEachRow(rows, [0, xOffset, yOffset], (b) =>
    loop(out, x, y, b[0]!, b[1]!, b[2]!, rows.inner, sd, sx, sy),
  );
}

/** dst (strided view) = src (strided, broadcast to dst's shape). */
export function copyStrided(
  dst: Arr,
  dstShape: readonly number[],
  dstStrides: readonly number[],
  dstOffset: number,
  src: Arr,
  srcStrides: readonly number[],
  srcOffset: number,
): void {
  const rows = mergeAxes(dstShape, [dstStrides, srcStrides]);
  const loop = rowLoop2('a');
  const [sd, sx] = rows.innerStride as [number, number];
  forEachRow(rows, [dstOffset, srcOffset], (b) => loop(dst, src, b[0]!, b[1]!, rows.inner, sd, sx));
}

function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
