// Registers the CPU backend and all of its kernels.
// Test: cd packages/tensor && npx vitest run src/ops
import './backend.js';
import './elementwise.js';
import './layout.js';
import './reduce.js';
import './nn.js';
import './indexing.js';
import './matmul.js';
import './optim.js';
import './fused.js';
import './random.js';
import './moe.js';
