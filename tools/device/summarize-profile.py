"""Groups a profile's kernels by name: launches and milliseconds per step, share of the total.
Usage: python3 summarize-profile.py nsys|ncu REPORT.csv STEPS  (tools/device/profile-train.sh)."""
import csv
import sys
from collections import defaultdict



def kernel_name(signature):
    """One name per kernel: the signature without template arguments and parameter list."""
    signature = signature.replace("<unnamed>", "(anonymous)").replace("(anonymous namespace)", "(anonymous)")
    out, depth = [], 0
    for i, c in enumerate(signature):
        if c == "(" and depth == 0 and not signature.startswith("(anonymous)", i):
            break
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out).replace("(anonymous)::", "").strip()


kind, path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
total_ns = defaultdict(float)
count = defaultdict(int)
with open(path, newline="") as f:
    lines = f.readlines()
if kind == "ncu":  # ncu prints its own log lines before the CSV header
    lines = lines[next(i for i, l in enumerate(lines) if l.startswith('"ID"')):]
for row in csv.DictReader(lines):
    if kind == "nsys":
        name, ns, n = row["Name"], float(row["Total Time (ns)"]), int(row["Instances"])
    else:
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name, ns, n = row["Kernel Name"], float(row["Metric Value"].replace(",", "")), 1
    short = kernel_name(name)
    total_ns[short] += ns
    count[short] += n
grand = sum(total_ns.values())
print(f"{grand / 1e6 / steps:.2f} ms of kernels per step, {sum(count.values()) / steps:.0f} launches")
print(f"{'ms/step':>8} {'share':>6} {'n/step':>7}  kernel")
for name, ns in sorted(total_ns.items(), key=lambda kv: -kv[1])[:45]:
    print(f"{ns / 1e6 / steps:8.2f} {ns / grand:6.1%} {count[name] / steps:7.1f}  {name[:110]}")
