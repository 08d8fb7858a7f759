// Public safetensors API of @grin-moe/tensor: single files, sharded Hugging Face checkpoints, and the
// float32 <-> f16/bf16 conversions. Tests: cd packages/tensor && npx vitest run src/io
export {
  bf16BitsToF32,
  bf16BitsToF32Array,
  f16BitsToF32,
  f16BitsToF32Array,
  f16BitsToF32Bits,
  f32ArrayToBf16Bits,
  f32ArrayToF16Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16Bits,
  f32ToF16Bits,
} from './half-float.js';
export {
  type DecodedArray,
  openSafetensors,
  type ReadAs,
  SafetensorsFile,
  type TensorArray,
  type TensorReader,
} from './safetensors.js';
export { type InMemoryTensor, parseSafetensorsBytes } from './safetensors-bytes.js';
export { decodeTensor } from './safetensors-decode.js';
export {
  type AnySafetensorsDType,
  DTYPE_BYTES,
  type SafetensorsDType,
  SafetensorsError,
  type SafetensorsExtraDType,
  type TensorInfo,
} from './safetensors-format.js';
export {
  type TensorData,
  type TensorEntries,
  type TensorEntry,
  writeSafetensors,
} from './safetensors-write.js';
export {
  Checkpoint,
  DEFAULT_MAX_SHARD_BYTES,
  INDEX_FILE_NAME,
  openCheckpoint,
  readShardIndex,
  type ShardedWriteOptions,
  type ShardIndex,
  SINGLE_FILE_NAME,
  writeShardedSafetensors,
} from './sharded.js';
export { type LoadOptions, loadTensors, readTensor, saveCheckpoint, saveTensors } from './tensors.js';
