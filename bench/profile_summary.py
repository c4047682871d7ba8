"""Where the time went, from a profile that `bench/run.py --profile` recorded with py-spy.

    .venv/bin/python bench/profile_summary.py bench/results/<time>-a-1.txt [--top 40]

Prints the share of samples spent in each function, including what it called, then the
functions where the samples were taken themselves. Waiting on PostgreSQL shows up as
psycopg's Connection.wait; the py-spy samples are of threads that were not idle."""

import argparse
import re
from collections import Counter

# `name (/long/path/site-packages/pkg/mod.py:123)` -> `name (pkg/mod.py)`
LOCATION = re.compile(r"\((?:.*/(?:site-packages|lib/python3\.\d+)/|.*/(?=chatconnect/|bench/))"
                      r"?([^():]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    return LOCATION.sub(r"(\1)", frame.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", help="a raw (collapsed stacks) file written by py-spy")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    inclusive, own, total = Counter(), Counter(), 0
    with open(args.profile) as lines:
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            samples = int(count)
            total += samples
            # Leading frames name the processes (master, worker): left out so workers add up.
            frames = [frame_name(f) for f in stack.split(";") if not f.startswith("process ")]
            for frame in set(frames):
                inclusive[frame] += samples
            if frames:
                own[frames[-1]] += samples
    if not total:
        raise SystemExit("no samples in this file")
    print(f"{total} samples\n\nincluding callees:")
    for frame, samples in inclusive.most_common(args.top):
        print(f"{100 * samples / total:5.1f}%  {frame}")
    print("\nin the function itself:")
    for frame, samples in own.most_common(args.top // 2):
        print(f"{100 * samples / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
