// Device entry of `grin bench gemm|attention` (the device machine has no Node workspace): bundled by
// tools/device/build-bundle.sh into .device/grin-bench.mjs with the addon beside it; run by
// tools/device/run-bench.sh as `/tmp/node .device/grin-bench.mjs gemm --json`. The bench itself
// runs the PyTorch side (python3 tools/device/torch_bench.py --suite NAME) and prints one JSON object.
import { CliError } from '../../apps/trainer/src/args.js';
import { benchCommand } from '../../apps/trainer/src/commands/bench.js';

try {
  process.exitCode = await benchCommand.run(process.argv.slice(2));
} catch (error) {
  console.error(error instanceof CliError ? `grin: ${error.message}` : error);
  process.exitCode = 1;
}
