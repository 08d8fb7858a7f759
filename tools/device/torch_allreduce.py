# torch.distributed (nccl) all-reduce timings at world size 1, the reference for the nccl group in
# tools/device/parallel-entry.ts, which runs this in the same device command (same sizes, same
# timing: blocks of reps with one synchronize, median block). Prints one "BENCH {json}" line per size.
# Run on the device: python3 tools/device/torch_allreduce.py --mib 1,4,16,64,256
import argparse, json, os, socket, time
import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument('--mib', default='1,4,16,64,256')
parser.add_argument('--reps', type=int, default=20)
args = parser.parse_args()

with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
torch.cuda.set_device(0)
dist.init_process_group('nccl', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
print('BENCH ' + json.dumps({'impl': 'torch', 'nccl': str(torch.cuda.nccl.version())}), flush=True)
for mib in [int(m) for m in args.mib.split(',')]:
    x = torch.ones(mib * 2**20 // 4, device='cuda', dtype=torch.float32)
    for _ in range(3): dist.all_reduce(x)
    torch.cuda.synchronize()
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.reps): dist.all_reduce(x)
        torch.cuda.synchronize()
        blocks.append((time.perf_counter() - start) / args.reps)
    print('BENCH ' + json.dumps({'impl': 'torch', 'mib': mib, 'ms': round(sorted(blocks)[2] * 1e3, 5)}), flush=True)
dist.destroy_process_group()
