#!/usr/bin/env python3
"""Static instruction mix of CUDA kernels, from `cuobjdump -sass` output.

    cuobjdump -sass build/.../decode_attention.cu.o | tools/sass_mix.py decode_mma_kernelILi128

Prints, for each kernel whose mangled name contains the filter: the instruction count,
the most common opcodes, and the code between consecutive clusters of HMMA instructions
(in the decode kernel, one cluster per specialized page path), so a change to the page
math shows up as a count per page path. Static counts: a guide, not a profile (ncu gives
the dynamic figures; tools/gpu_profile.sh).
"""
import collections
import re
import sys


def parse(lines):
    kernels, name, body = {}, None, []
    for line in lines:
        m = re.search(r"Function : (\S+)", line)
        if m:
            if name:
                kernels[name] = body
            name, body = m.group(1), []
            continue
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)", line)
        if m and name:
            body.append(m.group(3).split(".")[0])
    if name:
        kernels[name] = body
    return kernels


def clusters(ops, gap=150):
    idx = [i for i, op in enumerate(ops) if op == "HMMA"]
    if not idx:
        return []
    out, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > gap:
            out.append((start, prev))
            start = i
        prev = i
    out.append((start, prev))
    return out


def main():
    filt = sys.argv[1] if len(sys.argv) > 1 else ""
    for name, ops in parse(sys.stdin.read().split("\n")).items():
        if filt not in name:
            continue
        print(f"{name}: {len(ops)} instructions")
        print("  " + " ".join(f"{k}:{v}" for k, v in collections.Counter(ops).most_common(24)))
        prev_end = -1
        for start, end in clusters(ops):
            seg = ops[prev_end + 1:end + 1]
            mix = collections.Counter(seg).most_common(12)
            print(f"  HMMA cluster at {start}..{end}: {len(seg)} instructions since the last; "
                  + " ".join(f"{k}:{v}" for k, v in mix))
            prev_end = end


if __name__ == "__main__":
    main()
